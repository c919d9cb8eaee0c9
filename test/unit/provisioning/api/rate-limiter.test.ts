import { describe, expect, it } from 'vitest'
import { createRateLimiter, memoryRateBuckets } from '../../../../provisioning/api/rate-limiter.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { apiHarness } from './api-harness.ts'

describe('the control plane rate limiter in memory', () => {
  it('allows burst, then refuses with Retry-After seconds, counting refusals', async () => {
    const limiter = createRateLimiter(fixedClock(), { ratePerSecond: 0.5, burst: 2 })
    expect(await limiter.take('k')).toEqual({ ok: true })
    expect(await limiter.take('k')).toEqual({ ok: true })
    expect(await limiter.take('k')).toEqual({ ok: false, retryAfterSeconds: 2 })
    expect(limiter.refused()).toBe(1)
  })

  it('drops a bucket once it has refilled (no bucket is the same), so buckets are bounded by the keys in use', async () => {
    const clock = fixedClock()
    const limiter = createRateLimiter(clock, { ratePerSecond: 1, burst: 10 })
    for (let i = 0; i < 50; i++) await limiter.take(`gone-${i}`)
    expect(limiter.size()).toBe(50)
    clock.advance('10s')
    await limiter.take('live')
    expect(limiter.size()).toBe(1)
  })

  it('holds at most maxKeys buckets: a new key past it is refused until a bucket has refilled, known keys keep theirs', async () => {
    const clock = fixedClock()
    const buckets = memoryRateBuckets(clock, { ratePerSecond: 1, burst: 10 }, 3)
    for (const key of ['a', 'b', 'c']) expect(await buckets.take(key)).toEqual({ ok: true })
    expect(await buckets.take('d')).toEqual({ ok: false, retryAfterSeconds: 10 })
    expect(await buckets.take('a')).toEqual({ ok: true }) // a known key is not affected
    expect(buckets.size()).toBe(3)
    clock.advance('10s') // every bucket refilled: swept to make room
    expect(await buckets.take('d')).toEqual({ ok: true })
    expect(buckets.size()).toBe(1)
  })

  it("drops a key's bucket when the key is revoked through the API", async () => {
    const limiter = createRateLimiter(fixedClock(), { ratePerSecond: 0.01, burst: 5 })
    const h = await apiHarness({ limiter })
    const app = await h.keyWith('devices:read') // k1
    const admin = await h.keyWith('apikeys:admin', 'devices:read')
    expect((await h.call(app, 'GET', '/v1/devices')).statusCode).toBe(200)
    expect((await h.call(admin, 'GET', '/v1/apikeys')).statusCode).toBe(200)
    expect(limiter.size()).toBe(2)
    expect((await h.call(admin, 'POST', '/v1/apikeys/k1/revoke', {})).statusCode).toBe(200)
    expect(limiter.size()).toBe(1) // the admin's own
  })
})
