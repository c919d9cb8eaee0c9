import { describe, expect, expectTypeOf, it } from 'vitest'
import type { Insight, InsightSink, UsageLedger } from '../../../../broker/ai-bridge/bridge-deps.ts'
import { createAiUsageService, type AiInsight, type AiUsageService } from '../../../../provisioning/ai-usage/ai-usage-service.ts'
import { InMemoryAiUsageStore } from '../../../../provisioning/ai-usage/in-memory-ai-usage-store.ts'
import { aiUsageStoreContract } from '../../../contract/ai-usage-store.contract.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { fakeTimers } from '../../../helpers/fake-timers.ts'

/** The in-memory store, counting the insights of each write and failing on demand like a full disk. */
function countingStore() {
  const store = new InMemoryAiUsageStore() as InMemoryAiUsageStore & { batches: number[]; failing: boolean }
  const append = store.appendInsights.bind(store)
  store.batches = []
  store.failing = false
  store.appendInsights = async (insights, keep) => {
    if (store.failing) throw new Error('disk full')
    store.batches.push(insights.length)
    await append(insights, keep)
  }
  return store
}

aiUsageStoreContract(
  'InMemoryAiUsageStore',
  () => new InMemoryAiUsageStore(),
  (count) => Array(count).fill(new InMemoryAiUsageStore()),
)

const insight = (n: number): AiInsight => ({
  type: 'insight',
  id: `i${n}`,
  deviceId: 'd1',
  provider: 'local',
  model: 'gatehouse-local-stats',
  summary: `s${n}`,
  anomalies: [],
  at: new Date(Date.parse('2026-03-01T00:00:00Z') + n * 1000).toISOString(),
  usage: { requests: 1, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
})

describe('createAiUsageService', () => {
  it("matches the broker's UsageLedger and InsightSink structurally, and mirrors its Insight", () => {
    expectTypeOf<AiUsageService>().toExtend<UsageLedger>()
    expectTypeOf<AiUsageService>().toExtend<InsightSink>()
    expectTypeOf<AiInsight>().toEqualTypeOf<Insight>()
  })

  it('is a usage ledger: get answers zeros for a day without usage, add accumulates', async () => {
    const svc = createAiUsageService({ store: new InMemoryAiUsageStore(), clock: fixedClock() })
    expect(await svc.get('d1', '2026-03-01')).toEqual({ requests: 0, tokens: 0 })
    await svc.add('d1', '2026-03-01', 1, 60)
    await svc.add('d1', '2026-03-01', 1, 0)
    expect(await svc.get('d1', '2026-03-01')).toEqual({ requests: 2, tokens: 60 })
  })

  it('usageFor reports the last N UTC days up to today, zero-filled, oldest first, with the total', async () => {
    const clock = fixedClock('2026-03-03T08:00:00Z')
    const svc = createAiUsageService({ store: new InMemoryAiUsageStore(), clock })
    await svc.add('d1', '2026-02-28', 9, 9) // outside the window
    await svc.add('d1', '2026-03-01', 2, 100)
    await svc.add('d1', '2026-03-03', 1, 50)
    await svc.add('d2', '2026-03-03', 7, 7)
    expect(await svc.usageFor('d1', 3)).toEqual({
      deviceId: 'd1',
      from: '2026-03-01',
      to: '2026-03-03',
      days: [
        { day: '2026-03-01', requests: 2, tokens: 100 },
        { day: '2026-03-02', requests: 0, tokens: 0 },
        { day: '2026-03-03', requests: 1, tokens: 50 },
      ],
      total: { requests: 3, tokens: 150 },
    })
    expect((await svc.usageFor('d1')).days).toHaveLength(30)
  })

  it('keeps the last insightsPerDevice insights; listInsights answers newest first', async () => {
    const svc = createAiUsageService({ store: new InMemoryAiUsageStore(), clock: fixedClock() }, { insightsPerDevice: 3 })
    for (let n = 1; n <= 5; n++) await svc.append(insight(n))
    expect((await svc.listInsights('d1')).map((i) => i.id)).toEqual(['i5', 'i4', 'i3'])
    expect(await svc.list('d1', 1)).toEqual([insight(5)])
  })

  it('holds appended insights and writes them together, one store write per flushMs; readers see them at once', async () => {
    const clock = fixedClock()
    const timers = fakeTimers(clock)
    const store = countingStore()
    const svc = createAiUsageService({ store, clock, timers }, { insightsPerDevice: 3, insightFlushMs: 1000 })
    for (let n = 1; n <= 4; n++) await svc.append(insight(n))
    expect(store.batches).toEqual([]) // held
    expect((await svc.listInsights('d1')).map((i) => i.id)).toEqual(['i4', 'i3', 'i2']) // held ones count, within insightsPerDevice
    await timers.advance('1s')
    expect(store.batches).toEqual([4]) // one write for the four
    expect((await store.listInsights('d1', 10)).map((i) => i.id)).toEqual(['i4', 'i3', 'i2'])
    expect(timers.pending()).toBe(0) // nothing held: no timer
  })

  it('is bounded: at maxPendingInsights held it writes at once, and a failed write keeps only the newest for the next flush', async () => {
    const clock = fixedClock()
    const timers = fakeTimers(clock)
    const store = countingStore()
    const svc = createAiUsageService({ store, clock, timers }, { insightFlushMs: 60_000, maxPendingInsights: 3 })
    for (let n = 1; n <= 3; n++) await svc.append(insight(n))
    expect(store.batches).toEqual([3]) // the third one wrote the batch, without waiting for the timer
    store.failing = true
    for (let n = 4; n <= 5; n++) await svc.append(insight(n))
    await expect(svc.append(insight(6))).rejects.toThrow('disk full') // the caller (the bridge) counts and logs it
    await expect(svc.append(insight(7))).rejects.toThrow('disk full')
    expect((await svc.listInsights('d1', 10)).map((i) => i.id)).toEqual(['i7', 'i6', 'i5', 'i3', 'i2', 'i1']) // i4 gave way: 3 held at most
    store.failing = false
    await timers.advance('1m')
    expect((await store.listInsights('d1', 10)).map((i) => i.id)).toEqual(['i7', 'i6', 'i5', 'i3', 'i2', 'i1'])
  })

  it('closing writes what is held once: a failed last write rejects and is not retried (the store is closing)', async () => {
    const clock = fixedClock()
    const timers = fakeTimers(clock)
    const store = countingStore()
    const svc = createAiUsageService({ store, clock, timers }, { insightFlushMs: 60_000 })
    await svc.append(insight(1))
    store.failing = true
    await expect(svc.closeInsights()).rejects.toThrow('disk full')
    expect(timers.pending()).toBe(0) // no retry armed against a closed store
    expect(await svc.listInsights('d1', 10)).toEqual([])
  })

  it.each([
    ['fail/days-zero', (s: AiUsageService) => s.usageFor('d1', 0)],
    ['fail/days-too-many', (s: AiUsageService) => s.usageFor('d1', 367)],
    ['fail/days-fraction', (s: AiUsageService) => s.usageFor('d1', 1.5)],
    ['fail/limit-zero', (s: AiUsageService) => s.listInsights('d1', 0)],
    ['fail/limit-too-large', (s: AiUsageService) => s.listInsights('d1', 1001)],
    ['fail/bad-day', (s: AiUsageService) => s.get('d1', '2026-3-1')],
    ['fail/negative-tokens', (s: AiUsageService) => s.add('d1', '2026-03-01', 1, -5)],
  ])('%s', async (_name, call) => {
    const svc = createAiUsageService({ store: new InMemoryAiUsageStore(), clock: fixedClock() })
    await expect(call(svc)).rejects.toMatchObject({ code: 'GH_AI_USAGE_QUERY_INVALID', statusCode: 400 })
  })
})
