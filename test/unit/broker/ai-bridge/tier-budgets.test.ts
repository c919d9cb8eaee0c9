import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { limitsPolicy, loadConfig } from '../../../../config.ts'
import { createLimitsService } from '../../../../provisioning/limits/limits-service.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { startAiBridge } from '../../../helpers/ai-bridge-harness.ts'
import { fixedClock } from '../../../helpers/clock.ts'

describe("the AI bridge's budgets follow the registry's tier and device limits", () => {
  it('applies a tier change to the next provider request, and a device override over it', async () => {
    const clock = fixedClock('2026-03-01T12:00:00Z')
    const store = new SqliteRegistryStore(':memory:')
    onTestFinished(() => store.close())
    for (const id of ['d1', 'd2'])
      await store.insertDevice({ id, group: null, tier: 'standard', status: 'active', createdAt: clock.now(), updatedAt: clock.now() })
    const limits = createLimitsService(
      { store, limits: store.limits, clock, log: pino({ level: 'silent' }) },
      limitsPolicy(loadConfig({ dataDir: '/nonexistent' }, {})),
    )
    const h = startAiBridge({
      clock,
      options: {
        windowing: { messages: 1, seconds: 0 },
        tiers: {
          standard: { provider: 'local', limits: { requestsPerMinute: 600, burst: 100, dailyRequests: 10_000, dailyTokens: 1_000_000 } },
        },
      },
      limitsOf: async (id) => (await limits.limitsOf(id))?.ai,
    })
    for (let i = 0; i < 3; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(3) // the configured standard tier: 10,000 a day

    await limits.setTier('standard', { ai: { dailyRequests: 4 } }, 'operator:test')
    await limits.setDevice('d2', { ai: { dailyRequests: 6 } }, 'operator:test')
    for (let i = 0; i < 3; i++) h.core.telemetry('d1', { v: i })
    for (let i = 0; i < 8; i++) h.core.telemetry('d2', { v: i })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(4)
    expect(h.core.noticesOf('d1')).toEqual([expect.objectContaining({ reason: 'daily-requests' })])
    expect(h.core.insightsOf('d2')).toHaveLength(6) // its own budget beats its tier's
  })
})
