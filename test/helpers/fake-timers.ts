import type { Timers } from '../../certs/index.ts'
import { durationMs, type Duration, type FixedClock } from './clock.ts'

/**
 * Timers driven by a FixedClock (docs/conventions.md §13): nothing fires until the test calls advance(),
 * which moves the clock to each due timer in time order, fires it, and lets promises settle in between.
 */
export interface FakeTimers extends Timers {
  /** timers scheduled and not yet fired or cleared */
  pending(): number
  /** the delays (ms) of the pending timers, soonest first, relative to now */
  pendingDelays(): number[]
  advance(by: Duration): Promise<void>
}

/** Lets pending promise chains (and I/O callbacks already queued) run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r))
}

export function fakeTimers(clock: FixedClock): FakeTimers {
  let seq = 0
  const timers = new Map<number, { due: number; fn: () => void; seq: number }>()
  const now = () => clock.now().getTime()
  return {
    setTimeout(fn, ms) {
      const id = ++seq
      timers.set(id, { due: now() + Math.max(0, ms), fn, seq: id })
      return id
    },
    clearTimeout(handle) {
      timers.delete(handle as number)
    },
    pending: () => timers.size,
    pendingDelays: () => [...timers.values()].map((t) => t.due - now()).sort((a, b) => a - b),
    async advance(by) {
      const target = now() + durationMs(by)
      await settle()
      for (;;) {
        let next: [number, { due: number; fn: () => void; seq: number }] | undefined
        for (const entry of timers) {
          if (entry[1].due > target) continue
          if (!next || entry[1].due < next[1].due || (entry[1].due === next[1].due && entry[1].seq < next[1].seq)) next = entry
        }
        if (!next) break
        timers.delete(next[0])
        if (next[1].due > now()) clock.set(new Date(next[1].due))
        next[1].fn()
        await settle()
      }
      if (target > now()) clock.set(new Date(target))
      await settle()
    },
  }
}
