import type { Clock } from '../../certs/index.ts'

export interface RateLimit {
  /** sustained requests per second */
  ratePerSecond: number
  /** requests allowed at once after a quiet period */
  burst: number
}

export const DEFAULT_RATE_LIMIT: RateLimit = { ratePerSecond: 20, burst: 40 }

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number }

/**
 * Token buckets in memory, one per API key id, refilled from the injected clock. Only keys that
 * verified get a bucket, so there are at most as many buckets as API keys. (Cluster mode moves this to
 * Redis behind the same take() call.)
 */
export function createRateLimiter(clock: Clock, limit: RateLimit = DEFAULT_RATE_LIMIT) {
  if (!(limit.ratePerSecond > 0) || !(limit.burst >= 1)) throw new RangeError('rate limit: ratePerSecond must be > 0 and burst >= 1')
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take(key: string): RateDecision {
      const now = clock.now().getTime()
      const b = buckets.get(key) ?? { tokens: limit.burst, at: now }
      b.tokens = Math.min(limit.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * limit.ratePerSecond)
      b.at = now
      buckets.set(key, b)
      if (b.tokens >= 1) {
        b.tokens -= 1
        return { ok: true }
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / limit.ratePerSecond)) }
    },
  }
}

export type RateLimiter = ReturnType<typeof createRateLimiter>
