import { describe, expect, it } from 'vitest'
import { createCircuitBreaker } from '../../../../broker/ai-bridge/circuit-breaker.ts'
import { parseRetryAfter } from '../../../../broker/http-post.ts'
import { backoffDelay, withRetries } from '../../../../broker/ai-bridge/retry.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { fakeTimers, settle } from '../../../helpers/fake-timers.ts'
import { fixedRandom } from '../../../helpers/random.ts'

const retryable = (extra: Record<string, unknown> = {}) => Object.assign(new Error('boom'), { retryable: true, ...extra })

describe('retries', () => {
  it.each([
    ['ok/seconds', '2', 2000],
    ['ok/zero', '0', 0],
    ['ok/http-date', 'Sun, 01 Mar 2026 12:00:30 GMT', 30_000],
    ['ok/past-date', 'Sun, 01 Mar 2026 11:00:00 GMT', 0],
    ['fail/garbage', 'soon', undefined],
    ['fail/absent', null, undefined],
  ])('parseRetryAfter %s', (_name, header, expected) => {
    expect(parseRetryAfter(header, new Date('2026-03-01T12:00:00Z'))).toBe(expected)
  })

  it('backs off exponentially with equal jitter, capped at maxDelayMs', () => {
    const o = { max: 10, baseDelayMs: 100, maxDelayMs: 1000 }
    expect([0, 1, 2, 3, 4].map((r) => backoffDelay(r, o, 0))).toEqual([50, 100, 200, 400, 500])
    expect([0, 1, 2, 3, 4].map((r) => backoffDelay(r, o, 0.999999))).toEqual([100, 200, 400, 800, 1000])
  })

  it('retries retryable failures up to max, honours Retry-After, and stops at a non-retryable one', async () => {
    const clock = fixedClock()
    const timers = fakeTimers(clock)
    let calls = 0
    const failures = [retryable({ retryAfterMs: 5000 }), retryable(), Object.assign(new Error('bad request'), { retryable: false })]
    const run = withRetries(
      async () => {
        throw failures[calls++]
      },
      { max: 5, baseDelayMs: 100, maxDelayMs: 10_000, timers, random: fixedRandom(0) },
    ).catch((err: Error) => err)
    await settle()
    expect(calls).toBe(1)
    expect(timers.pendingDelays()).toEqual([5000])
    await timers.advance('5s')
    expect(calls).toBe(2)
    expect(timers.pendingDelays()).toEqual([100]) // retry 1: 200 ms ceiling, jitter 0 -> 100
    await timers.advance('100ms')
    expect(calls).toBe(3)
    expect(((await run) as Error).message).toBe('bad request')
  })

  it('gives up at once when Retry-After is longer than maxDelayMs', async () => {
    const clock = fixedClock()
    let calls = 0
    const err = retryable({ retryAfterMs: 60_000 })
    await expect(
      withRetries(
        async () => {
          calls++
          throw err
        },
        { max: 3, baseDelayMs: 100, maxDelayMs: 10_000, timers: fakeTimers(clock), random: fixedRandom(0) },
      ),
    ).rejects.toBe(err)
    expect(calls).toBe(1)
  })
})

describe('createCircuitBreaker', () => {
  it('opens after K consecutive failures, half-opens after the cool-down by the clock, closes on success', async () => {
    const clock = fixedClock()
    const breaker = createCircuitBreaker('openai', { failures: 2, cooldownMs: 30_000 }, clock)
    const fail = () => breaker.run(async () => Promise.reject(new Error('500')))
    await expect(fail()).rejects.toThrow('500')
    await expect(breaker.run(async () => 'ok')).resolves.toBe('ok') // success resets the count
    await expect(fail()).rejects.toThrow('500')
    await expect(fail()).rejects.toThrow('500')
    expect(breaker.state()).toBe('open')
    await expect(breaker.run(async () => 'never')).rejects.toMatchObject({ code: 'GH_AI_CIRCUIT_OPEN', retryable: false })
    clock.advance('30s')
    expect(breaker.state()).toBe('half-open')
    await expect(fail()).rejects.toThrow('500') // a failed trial opens it again at once
    expect(breaker.state()).toBe('open')
    clock.advance('30s')
    let release!: () => void
    const trial = breaker.run(() => new Promise<string>((r) => (release = () => r('back'))))
    await expect(breaker.run(async () => 'second')).rejects.toMatchObject({ code: 'GH_AI_CIRCUIT_OPEN' }) // one trial at a time
    release()
    await expect(trial).resolves.toBe('back')
    expect(breaker.state()).toBe('closed')
  })

  it("does not count failures the caller says are not the provider's", async () => {
    const breaker = createCircuitBreaker('local', { failures: 1, cooldownMs: 1000 }, fixedClock())
    await expect(
      breaker.run(
        async () => Promise.reject(new Error('aborted')),
        () => false,
      ),
    ).rejects.toThrow()
    expect(breaker.state()).toBe('closed')
  })
})
