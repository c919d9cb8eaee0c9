import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { attachAiBridge } from '../../../broker/index.ts'
import { dataDirLayout, initControlPlane, openControlPlane } from '../../../provisioning/index.ts'
import { createAiUsageService } from '../../../provisioning/ai-usage/ai-usage-service.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { aiUsageStoreContract } from '../../contract/ai-usage-store.contract.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { fixedClock, type FixedClock } from '../../helpers/clock.ts'
import { createFakeAiCore } from '../../helpers/fake-ai-core.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'
import { seededRandom } from '../../helpers/random.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

function openStore(path: string): SqliteRegistryStore {
  const store = new SqliteRegistryStore(path)
  onTestFinished(() => store.close())
  return store
}

aiUsageStoreContract(
  'SqliteAiUsageStore',
  () => openStore(join(tempDir(), 'registry.db')).aiUsage,
  (count) => {
    const path = join(tempDir(), 'registry.db')
    return Array.from({ length: count }, () => openStore(path).aiUsage) // a connection each, as broker processes have
  },
)

/** A bridge on a fake core whose UsageLedger and InsightSink are the SQLite registry at `path`. */
function bridgeOn(path: string, clock: FixedClock, dailyRequests = 2) {
  const store = openStore(path)
  const usage = createAiUsageService({ store: store.aiUsage, clock, timers: fakeTimers(clock) }, { insightsPerDevice: 10 })
  const core = createFakeAiCore(clock)
  const bridge = attachAiBridge(
    core,
    {
      clock,
      log: createRecordingLogger().log,
      usage,
      insights: usage,
      timers: fakeTimers(clock),
      random: seededRandom(3),
      deviceContext: () => ({ tier: 'standard', group: null, settings: {} }),
    },
    {
      windowing: { messages: 1, seconds: 0 },
      tiers: { standard: { provider: 'local', limits: { requestsPerMinute: 600, burst: 100, dailyRequests, dailyTokens: 1000 } } },
    },
  )
  onTestFinished(() => bridge.detach())
  // what ControlPlane.close does: the insights' write-behind, then the registry
  const close = () => (usage.flushInsights(), store.close())
  return { store, usage, core, bridge, close }
}

describe('AI usage in the SQLite registry', () => {
  it('migration 3 adds ai_usage and insights to the registry', () => {
    const path = join(tempDir(), 'registry.db')
    openStore(path).close()
    const db = new Database(path, { readonly: true })
    onTestFinished(() => void db.close())
    expect(db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(3)
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name)
    expect(tables).toEqual(expect.arrayContaining(['ai_usage', 'insights']))
  })

  it('daily budgets and insights survive a restart: the reopened bridge throttles at once', async () => {
    const path = join(tempDir(), 'registry.db')
    const clock = fixedClock('2026-03-01T12:00:00Z')
    const first = bridgeOn(path, clock)
    for (let i = 0; i < 2; i++) first.core.telemetry('d1', { v: i })
    await first.bridge.idle()
    expect(first.core.insightsOf('d1')).toHaveLength(2)
    await first.bridge.detach()
    first.close()

    clock.advance('1h')
    const second = bridgeOn(path, clock)
    expect(await second.usage.get('d1', '2026-03-01')).toEqual({ requests: 2, tokens: 0 })
    second.core.telemetry('d1', { v: 3 })
    await second.bridge.idle()
    expect(second.core.insightsOf('d1')).toHaveLength(0)
    expect(second.core.noticesOf('d1')).toEqual([
      { type: 'throttled', deviceId: 'd1', reason: 'daily-requests', retryAt: '2026-03-02T00:00:00.000Z' },
    ])
    expect((await second.usage.listInsights('d1')).map((i) => i.id)).toEqual(
      first.core
        .insightsOf('d1')
        .map((i) => i.id)
        .reverse(),
    )
    expect((await second.usage.usageFor('d1', 2)).days).toEqual([
      { day: '2026-02-28', requests: 0, tokens: 0 },
      { day: '2026-03-01', requests: 2, tokens: 0 },
    ])

    clock.set('2026-03-02T00:00:00Z')
    second.core.telemetry('d1', { v: 4 })
    await second.bridge.idle()
    expect(second.core.insightsOf('d1')).toHaveLength(1)
  })

  it('a clean stop gives the unspent part of a leased slice back: the day continues where it was', async () => {
    const path = join(tempDir(), 'registry.db')
    const clock = fixedClock('2026-03-01T12:00:00Z')
    const first = bridgeOn(path, clock, 300) // slices of 3
    for (let i = 0; i < 4; i++) first.core.telemetry('d1', { v: i })
    await first.bridge.idle()
    expect(await first.usage.get('d1', '2026-03-01')).toEqual({ requests: 6, tokens: 0 }) // two slices leased
    await first.bridge.detach()
    first.close()

    const second = bridgeOn(path, clock, 6)
    expect(await second.usage.get('d1', '2026-03-01')).toEqual({ requests: 4, tokens: 0 })
    for (let i = 0; i < 3; i++) second.core.telemetry('d1', { v: i })
    await second.bridge.idle()
    expect(second.core.insightsOf('d1')).toHaveLength(2) // 4 of 6 spent before the restart
    expect(second.core.noticesOf('d1')).toEqual([expect.objectContaining({ reason: 'daily-requests' })])
  })

  it('a clean close of the control plane writes the insights its write-behind still holds', async () => {
    const dataDir = join(tempDir(), 'data')
    const { log } = createRecordingLogger()
    await initControlPlane(dataDir, {}, { log }, 'operator:test')
    const first = await openControlPlane(dataDir, {}, { log })
    const at = '2026-03-01T12:00:00.000Z'
    const insight = (n: number) => ({
      type: 'insight' as const,
      id: `i${n}`,
      deviceId: 'd1',
      provider: 'local',
      model: 'm',
      summary: `s${n}`,
      anomalies: [],
      at,
      usage: { requests: 1, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
    })
    await first.aiUsage.append(insight(1))
    await first.aiUsage.append(insight(2))
    const rows = () => {
      const db = new Database(dataDirLayout(dataDir).database, { readonly: true })
      try {
        return (db.prepare('SELECT count(*) AS n FROM insights').get() as { n: number }).n
      } finally {
        db.close()
      }
    }
    expect(rows()).toBe(0) // held, not written yet
    expect((await first.aiUsage.listInsights('d1')).map((i) => i.id)).toEqual(['i2', 'i1']) // yet readers see them
    await first.close()
    expect(rows()).toBe(2)

    const second = await openControlPlane(dataDir, {}, { log })
    onTestFinished(() => second.close())
    expect(await second.aiUsage.listInsights('d1')).toEqual([insight(2), insight(1)])
  })
})
