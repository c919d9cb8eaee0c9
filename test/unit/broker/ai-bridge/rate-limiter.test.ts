import { describe, expect, it } from 'vitest'
import { createDeviceLimiter, nextUtcMidnight, utcDay } from '../../../../broker/ai-bridge/rate-limiter.ts'
import { createAiUsageService } from '../../../../provisioning/ai-usage/ai-usage-service.ts'
import { InMemoryAiUsageStore } from '../../../../provisioning/ai-usage/in-memory-ai-usage-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'

function world(start = '2026-03-01T12:00:00Z') {
  const clock = fixedClock(start)
  const usage = createAiUsageService({ store: new InMemoryAiUsageStore(), clock })
  const limiter = createDeviceLimiter({ clock, usage }, { maxTrackedDevices: 1000 })
  return { clock, usage, limiter }
}
const limits = { requestsPerMinute: 6, burst: 3, dailyRequests: 1000, dailyTokens: 1_000_000 }

describe('createDeviceLimiter', () => {
  it('allows exactly `burst` at once, then one per 60/requestsPerMinute seconds, per device', async () => {
    const { clock, limiter } = world()
    const results = []
    for (let i = 0; i < 4; i++) results.push((await limiter.admit('d1', limits)).ok)
    expect(results).toEqual([true, true, true, false])
    expect(await limiter.admit('d2', limits)).toMatchObject({ ok: true }) // its own bucket
    expect(await limiter.admit('d1', limits)).toEqual({
      ok: false,
      reason: 'rate',
      retryAt: new Date('2026-03-01T12:00:10Z'),
      day: '2026-03-01',
    })
    clock.advance('9999ms')
    expect((await limiter.admit('d1', limits)).ok).toBe(false)
    clock.advance('1ms')
    expect((await limiter.admit('d1', limits)).ok).toBe(true)
    expect((await limiter.admit('d1', limits)).ok).toBe(false)
  })

  it('allows exactly dailyRequests per UTC day from the ledger, then refuses until midnight', async () => {
    const { clock, usage, limiter } = world('2026-03-01T23:00:00Z')
    const daily = { ...limits, burst: 100, dailyRequests: 2 }
    await usage.add('d1', '2026-03-01', 1, 0)
    expect((await limiter.admit('d1', daily)).ok).toBe(true)
    await usage.add('d1', '2026-03-01', 1, 0) // the bridge records each request after it is made
    expect(await limiter.admit('d1', daily)).toEqual({
      ok: false,
      reason: 'daily-requests',
      retryAt: new Date('2026-03-02T00:00:00Z'),
      day: '2026-03-01',
    })
    clock.set('2026-03-02T00:00:00Z')
    expect(await limiter.admit('d1', daily)).toEqual({ ok: true, day: '2026-03-02' })
  })

  it('refuses once the day used dailyTokens, without taking a bucket token', async () => {
    const { usage, limiter } = world()
    await usage.add('d1', '2026-03-01', 1, 500)
    expect(await limiter.admit('d1', { ...limits, burst: 1, dailyTokens: 500 })).toMatchObject({ ok: false, reason: 'daily-tokens' })
    expect((await limiter.admit('d1', { ...limits, burst: 1, dailyTokens: 501 })).ok).toBe(true)
  })

  it('an episode starts once and ends with an admission or when its retry time has passed', () => {
    const { clock, limiter } = world()
    const retryAt = new Date('2026-03-01T12:00:10Z')
    expect(limiter.startsEpisode('d1', retryAt)).toBe(true)
    expect(limiter.startsEpisode('d1', retryAt)).toBe(false)
    limiter.endEpisode('d1')
    expect(limiter.startsEpisode('d1', retryAt)).toBe(true)
    clock.advance('10s')
    expect(limiter.startsEpisode('d1', new Date('2026-03-01T12:00:20Z'))).toBe(true)
  })

  it('keeps at most maxTrackedDevices buckets', async () => {
    const clock = fixedClock()
    const limiter = createDeviceLimiter(
      { clock, usage: { lease: (_d, _day, requests) => ({ granted: requests, requests, tokens: 0 }), settle: () => {} } },
      { maxTrackedDevices: 2 },
    )
    for (const id of ['a', 'b', 'c']) await limiter.admit(id, limits)
    expect(limiter.trackedDevices()).toBe(2)
  })

  it('days are UTC dates', () => {
    expect(utcDay(new Date('2026-03-01T23:59:59.999-05:00'))).toBe('2026-03-02')
    expect(nextUtcMidnight(new Date('2026-12-31T10:00:00Z')).toISOString()).toBe('2027-01-01T00:00:00.000Z')
  })
})
