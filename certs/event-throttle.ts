import type { Clock } from './clock.ts'

/**
 * "First one, then at most one per interval, with a count of what was suppressed", per key. Used so
 * that a misbehaving device or address cannot flood the audit log or the logs (refused publishes,
 * throttles, per-IP refusals). Clock-driven and timer-free: a suppressed count is reported with the
 * next event that gets through.
 */
export interface EventThrottle {
  /** `emit: true` when this event should be recorded; `suppressed` events since the last recorded one. */
  hit(key: string): { emit: true; suppressed: number } | { emit: false }
}

export function createEventThrottle(options: { intervalMs: number; maxKeys: number }, clock: Clock): EventThrottle {
  const entries = new Map<string, { lastEmit: number; suppressed: number }>()
  return {
    hit(key) {
      const now = clock.now().getTime()
      const entry = entries.get(key)
      if (entry && now - entry.lastEmit < options.intervalMs && now >= entry.lastEmit) {
        entry.suppressed++
        return { emit: false }
      }
      const suppressed = entry?.suppressed ?? 0
      entries.delete(key) // re-insert: Map order is LRU order
      if (entries.size >= options.maxKeys) {
        const oldest = entries.keys().next()
        if (!oldest.done) entries.delete(oldest.value)
      }
      entries.set(key, { lastEmit: now, suppressed: 0 })
      return { emit: true, suppressed }
    },
  }
}
