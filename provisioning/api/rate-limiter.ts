import type { Clock } from '../../certs/index.ts'

export interface RateLimit {
  /** sustained requests per second */
  ratePerSecond: number
  /** requests allowed at once after a quiet period */
  burst: number
}

export const DEFAULT_RATE_LIMIT: Readonly<RateLimit> = Object.freeze({ ratePerSecond: 20, burst: 40 })

/**
 * A request rate of the control plane (per API key, per claim) as a JSON Schema: its range, and per
 * field its default. config.ts embeds it (`httpRateLimit`, `claimRequestRate`), so the default lives in
 * one constant and the schema, the Config type and the fallback here all come from it.
 */
export function rateLimitSchema(defaults: Readonly<RateLimit>) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      ratePerSecond: { type: 'number', exclusiveMinimum: 0, default: defaults.ratePerSecond },
      burst: { type: 'integer', minimum: 1, default: defaults.burst },
    },
    default: {},
  } as const
}

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number }

/**
 * Token buckets in memory, one per API key id, refilled from the injected clock. Only keys that
 * verified get a bucket, so there are at most as many buckets as API keys. (Cluster mode moves this to
 * Redis behind the same take() call.) refused() counts the requests it turned away since it was made
 * (gatehouse_limit_hits_total, docs/architecture.md "Metrics").
 */
export function createRateLimiter(clock: Clock, limit: Readonly<RateLimit> = DEFAULT_RATE_LIMIT) {
  if (!(limit.ratePerSecond > 0) || !(limit.burst >= 1)) throw new RangeError('rate limit: ratePerSecond must be > 0 and burst >= 1')
  const buckets = new Map<string, { tokens: number; at: number }>()
  let refused = 0
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
      refused++
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / limit.ratePerSecond)) }
    },
    refused: () => refused,
  }
}

export type RateLimiter = ReturnType<typeof createRateLimiter>
