import type { Clock } from '../../certs/index.ts'
import { createTokenBucket, type TokenBucket } from '../token-bucket.ts'
import type { ThrottleReason, UsageLedger } from './bridge-deps.ts'
import { createDailyBudgets, type DailyBudgets } from './budgets.ts'
import type { AiLimits } from './options.ts'

/**
 * Per-device limits of the AI bridge: a token bucket (requests per minute, burst) in memory, and a
 * daily budget (requests, AI tokens) leased in slices from the UsageLedger (budgets.ts), so that it
 * survives restarts and, in cluster mode, is shared. Time comes only from the clock. The bucket is broker/token-bucket.ts's
 * createTokenBucket, kept per device because each device may have its own limits (tier, override).
 */
export type LimitDecision = { ok: true; day: string } | { ok: false; reason: ThrottleReason; retryAt: Date; day: string }

export interface DeviceLimiter {
  /**
   * Takes one request of the day's budget (budgets.ts; a day known to be spent is refused at once) and
   * one token from the device's bucket; over the rate, the budget is not asked (no lease for a request
   * that cannot go). A refusal takes nothing and says when a request would pass again.
   */
  admit(deviceId: string, limits: AiLimits): Promise<LimitDecision>
  /** true for the first throttle of an episode (the device is told once); an admission ends the episode */
  startsEpisode(deviceId: string, retryAt: Date): boolean
  endEpisode(deviceId: string): void
  /** The daily budgets (giveBack, spend, flush). */
  budgets: DailyBudgets
  /** devices with a bucket (for tests and metrics) */
  trackedDevices(): number
}

/** The UTC date of an instant, 'YYYY-MM-DD': the key of the daily budget. */
export const utcDay = (at: Date): string => at.toISOString().slice(0, 10)

export function nextUtcMidnight(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1))
}

/** A Map used as an LRU of at most `max` entries. */
function touch<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  if (map.size >= max) {
    const oldest = map.keys().next()
    if (!oldest.done) map.delete(oldest.value)
  }
  map.set(key, value)
}

export function createDeviceLimiter(deps: { clock: Clock; usage: UsageLedger }, options: { maxTrackedDevices: number }): DeviceLimiter {
  const buckets = new Map<string, { bucket: TokenBucket; rpm: number; burst: number }>()
  /** device -> end of the current throttle episode (ms) */
  const episodes = new Map<string, number>()
  const budgets = createDailyBudgets(deps.usage, options)

  function bucketFor(deviceId: string, limits: AiLimits): TokenBucket {
    let entry = buckets.get(deviceId)
    const next = { ratePerSecond: limits.requestsPerMinute / 60, burst: limits.burst }
    if (!entry) entry = { bucket: createTokenBucket(next, deps.clock), rpm: limits.requestsPerMinute, burst: limits.burst }
    else if (entry.rpm !== limits.requestsPerMinute || entry.burst !== limits.burst) {
      // changed limits (a tier's or the device's, in the registry) apply live, keeping what was spent
      entry.bucket.reconfigure(next)
      entry = { ...entry, rpm: limits.requestsPerMinute, burst: limits.burst }
    }
    touch(buckets, deviceId, entry, options.maxTrackedDevices)
    return entry.bucket
  }

  return {
    async admit(deviceId, limits) {
      const now = deps.clock.now()
      const day = utcDay(now)
      const bucket = bucketFor(deviceId, limits)
      if (budgets.knownSpent(deviceId, day)) return { ok: false, reason: 'daily-requests', retryAt: nextUtcMidnight(now), day }
      // over the rate: refused without touching the ledger (a slice is only leased for a request that can go)
      if (bucket.available() >= 1) {
        const verdict = await budgets.take(deviceId, day, limits)
        if (verdict !== 'ok') return { ok: false, reason: verdict, retryAt: nextUtcMidnight(now), day }
        if (bucket.tryTake(1)) return { ok: true, day }
        budgets.giveBack(deviceId, day) // the bucket was spent meanwhile
      }
      const ratePerMs = limits.requestsPerMinute / 60_000
      const waitMs = Math.ceil((1 - bucket.available()) / ratePerMs)
      return { ok: false, reason: 'rate', retryAt: new Date(now.getTime() + waitMs), day }
    },
    startsEpisode(deviceId, retryAt) {
      const now = deps.clock.now().getTime()
      const until = episodes.get(deviceId)
      // Same episode while the device was told to wait; past that time a new refusal is news again.
      if (until !== undefined && now < until) return false
      touch(episodes, deviceId, retryAt.getTime(), options.maxTrackedDevices)
      return true
    },
    endEpisode(deviceId) {
      episodes.delete(deviceId)
    },
    budgets,
    trackedDevices: () => buckets.size,
  }
}
