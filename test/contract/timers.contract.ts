import { describe, expect, it } from 'vitest'
import type { Timers } from '../../certs/timers.ts'

/** Timers and the time they run on. */
export interface TimersFixture {
  timers: Timers
  /** ms since some fixed instant, on the time the timers run on */
  now(): number
  /** lets time pass until `fired` settles, `ms` at most (fake timers: advance(ms); real ones: wait for it) */
  runUntil(fired: Promise<unknown>, ms: number): Promise<void>
}

/**
 * What code that asks `deps.timers` may rely on, whoever serves them: systemTimers (certs/timers.ts) and
 * test/helpers/fake-timers.ts. Delays are short: the real timers run in real time.
 */
export function timersContract(name: string, make: () => TimersFixture): void {
  /** schedules `label` after `ms`, logging the label and how late after scheduling it fired */
  function recorder(f: TimersFixture) {
    const fired: { label: string; after: number }[] = []
    const schedule = (label: string, ms: number, then?: () => void) => {
      const start = f.now()
      return f.timers.setTimeout(() => {
        fired.push({ label, after: f.now() - start })
        then?.()
      }, ms)
    }
    return { fired, schedule }
  }

  describe(`${name} (Timers contract)`, () => {
    it('fires each timer once, soonest first, none before its delay', async () => {
      const f = make()
      const { fired, schedule } = recorder(f)
      let last!: () => void
      const done = new Promise<void>((r) => (last = r))
      schedule('c', 30, last)
      schedule('a', 10)
      schedule('b', 20)
      await f.runUntil(done, 30)
      expect(fired.map((x) => x.label)).toEqual(['a', 'b', 'c'])
      for (const [i, delay] of [10, 20, 30].entries()) expect(fired[i]!.after).toBeGreaterThanOrEqual(delay - 1) // Node may fire 1 ms early
    })

    it('fires timers of the same delay in the order they were set', async () => {
      const f = make()
      const { fired, schedule } = recorder(f)
      let last!: () => void
      const done = new Promise<void>((r) => (last = r))
      schedule('first', 5)
      schedule('second', 5)
      schedule('marker', 10, last)
      await f.runUntil(done, 10)
      expect(fired.map((x) => x.label)).toEqual(['first', 'second', 'marker'])
    })

    it('never fires a cleared timer, and clearing one twice or after it fired is harmless', async () => {
      const f = make()
      const { fired, schedule } = recorder(f)
      let last!: () => void
      const done = new Promise<void>((r) => (last = r))
      const cleared = schedule('cleared', 5)
      f.timers.clearTimeout(cleared)
      f.timers.clearTimeout(cleared)
      const marker = schedule('marker', 10, last)
      await f.runUntil(done, 10)
      f.timers.clearTimeout(marker)
      expect(fired.map((x) => x.label)).toEqual(['marker'])
    })

    it('fires a timer of no or a negative delay, and one set from inside a callback at its own delay', async () => {
      const f = make()
      const { fired, schedule } = recorder(f)
      let last!: () => void
      const done = new Promise<void>((r) => (last = r))
      schedule('zero', 0)
      schedule('negative', -5, () => schedule('nested', 10, last))
      await f.runUntil(done, 10)
      expect(fired.map((x) => x.label)).toEqual(['zero', 'negative', 'nested'])
      expect(fired[2]!.after).toBeGreaterThanOrEqual(9)
    })
  })
}
