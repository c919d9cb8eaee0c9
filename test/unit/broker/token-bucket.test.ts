import { describe, expect, it } from 'vitest'
import { createKeyedTokenBuckets, createTokenBucket } from '../../../broker/token-bucket.ts'
import { createEventThrottle } from '../../../certs/index.ts'
import { fixedClock } from '../../helpers/clock.ts'

describe('createTokenBucket', () => {
  it('starts full and allows a burst, then refuses', () => {
    const clock = fixedClock()
    const b = createTokenBucket({ ratePerSecond: 2, burst: 3 }, clock)
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false])
  })

  it('refills at the rate, read from the clock', () => {
    const clock = fixedClock()
    const b = createTokenBucket({ ratePerSecond: 2, burst: 3 }, clock)
    for (let i = 0; i < 3; i++) b.tryTake()
    clock.advance('499ms')
    expect(b.tryTake()).toBe(false)
    clock.advance('1ms')
    expect(b.tryTake()).toBe(true)
    expect(b.tryTake()).toBe(false)
  })

  it('never holds more than the burst', () => {
    const clock = fixedClock()
    const b = createTokenBucket({ ratePerSecond: 100, burst: 5 }, clock)
    clock.advance('1h')
    expect(b.available()).toBe(5)
  })

  it('takes several tokens at once or none', () => {
    const clock = fixedClock()
    const b = createTokenBucket({ ratePerSecond: 1000, burst: 1000 }, clock)
    expect(b.tryTake(600)).toBe(true)
    expect(b.tryTake(600)).toBe(false)
    expect(b.available()).toBe(400)
  })

  it('ignores a clock that steps back', () => {
    const clock = fixedClock('2026-01-01T00:00:10Z')
    const b = createTokenBucket({ ratePerSecond: 1, burst: 1 }, clock)
    b.tryTake()
    clock.set('2026-01-01T00:00:00Z')
    expect(b.tryTake()).toBe(false)
    clock.set('2026-01-01T00:00:11Z')
    expect(b.tryTake()).toBe(true)
  })

  it.each([
    ['fail/zero-rate', { ratePerSecond: 0, burst: 1 }],
    ['fail/nan-rate', { ratePerSecond: Number.NaN, burst: 1 }],
    ['fail/burst-below-one', { ratePerSecond: 1, burst: 0.5 }],
  ])('%s', (_name, options) => {
    expect(() => createTokenBucket(options, fixedClock())).toThrow(expect.objectContaining({ code: 'GH_BROKER_OPTION_INVALID' }))
  })
})

describe('createKeyedTokenBuckets', () => {
  it('keeps one bucket per key', () => {
    const clock = fixedClock()
    const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 10 }, clock)
    expect(k.tryTake('a')).toBe(true)
    expect(k.tryTake('a')).toBe(false)
    expect(k.tryTake('b')).toBe(true)
  })

  it('forgets the least recently used key past maxKeys', () => {
    const clock = fixedClock()
    const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 2 }, clock)
    k.tryTake('a')
    k.tryTake('b')
    k.tryTake('a') // a is now the most recent
    k.tryTake('c') // evicts b
    expect(k.size()).toBe(2)
    expect(k.tryTake('a')).toBe(false) // still remembered, still empty
    expect(k.tryTake('b')).toBe(true) // forgotten: a fresh bucket
  })

  it('keeps a key in steady use while a flood of new keys passes through, and never holds more than maxKeys', () => {
    const clock = fixedClock()
    const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 8 }, clock)
    expect(k.tryTake('hot')).toBe(true)
    for (let i = 0; i < 1000; i++) {
      k.tryTake(`cold-${i}`)
      expect(k.tryTake('hot')).toBe(false) // remembered, still empty: it was never forgotten
      expect(k.size()).toBeLessThanOrEqual(8)
    }
    expect(k.tryTake('cold-0')).toBe(true) // long forgotten: a fresh bucket
  })

  it('stays within maxKeys when every remembered key was used since the sweep last passed it', () => {
    const clock = fixedClock()
    const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 200 }, clock)
    for (let round = 0; round < 2; round++) for (let i = 0; i < 200; i++) k.tryTake(`k-${i}`)
    k.tryTake('new')
    expect(k.size()).toBe(200)
    expect(k.tryTake('new')).toBe(false) // the new key is remembered
  })
})

describe('createEventThrottle', () => {
  it('lets the first event through, then one per interval with the suppressed count', () => {
    const clock = fixedClock()
    const t = createEventThrottle({ intervalMs: 60_000, maxKeys: 10 }, clock)
    expect(t.hit('a')).toEqual({ emit: true, suppressed: 0 })
    expect(t.hit('a')).toEqual({ emit: false })
    expect(t.hit('b')).toEqual({ emit: true, suppressed: 0 })
    clock.advance('30s')
    expect(t.hit('a')).toEqual({ emit: false })
    clock.advance('30s')
    expect(t.hit('a')).toEqual({ emit: true, suppressed: 2 })
    expect(t.hit('a')).toEqual({ emit: false })
  })
})

describe('reconfiguring a bucket (a tier or device limit changed live)', () => {
  it('takes the new rate and burst, keeping what was spent: no refill by the change', () => {
    const clock = fixedClock()
    const b = createTokenBucket({ ratePerSecond: 1, burst: 10 }, clock)
    for (let i = 0; i < 8; i++) b.tryTake()
    b.reconfigure({ ratePerSecond: 100, burst: 50 })
    expect(b.available()).toBe(2) // a raised burst is earned, not granted
    clock.advance('100ms')
    expect(b.available()).toBeCloseTo(12) // at the new rate
    b.reconfigure({ ratePerSecond: 1, burst: 5 })
    expect(b.available()).toBe(5) // a lowered burst caps what is left
  })

  it('gives a key its own options, live for an existing bucket and from the start for a new one', () => {
    const clock = fixedClock()
    const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 3, maxKeys: 10 }, clock)
    k.tryTake('a')
    k.configure('a', { ratePerSecond: 1, burst: 1 })
    expect([k.tryTake('a'), k.tryTake('a')]).toEqual([true, false])
    k.configure('b', { ratePerSecond: 1, burst: 5 })
    expect(k.optionsOf('b')).toEqual({ ratePerSecond: 1, burst: 5 })
    expect(Array.from({ length: 6 }, () => k.tryTake('b'))).toEqual([true, true, true, true, true, false])
    k.configure('b', undefined)
    expect(k.optionsOf('b')).toEqual({ ratePerSecond: 1, burst: 3 })
    expect(k.optionsOf('c')).toEqual({ ratePerSecond: 1, burst: 3 })
  })

  it('makes no bucket for a key put on the shared options: its first take makes it, full', () => {
    const clock = fixedClock()
    const k = createKeyedTokenBuckets({ ratePerSecond: 1, burst: 2, maxKeys: 10 }, clock)
    k.configure('a', undefined)
    expect(k.size()).toBe(0)
    expect([k.tryTake('a'), k.tryTake('a'), k.tryTake('a')]).toEqual([true, true, false])
    expect(k.size()).toBe(1)
  })
})
