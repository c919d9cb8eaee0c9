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
 * Where a limiter keeps its buckets: this process's memory (Mode 1, memoryRateBuckets) or, in a cluster, Redis
 * (the composition root builds it from the broker's rate-limiter-flexible limiter, broker/cluster-connect-rate.ts),
 * so every worker and node spends one budget per key.
 */
export interface RateBuckets {
  take(key: string): Promise<RateDecision>
  /** drops a key's bucket (its key or claim is gone): the next take starts full */
  forget(key: string): Promise<void>
}

/** A rate limit of the control plane: its buckets, and refused() counting the requests it turned away (gatehouse_limit_hits_total). */
export interface RateLimiter extends RateBuckets {
  refused(): number
}

/** Makes the limiter of one kind of caller (`api-key`, `claim`, `sign-in-address`, `sign-in`) with its limit. */
export type RateLimiterFactory = (name: string, limit: Readonly<RateLimit>) => RateLimiter

function checkLimit(limit: Readonly<RateLimit>): void {
  if (!(limit.ratePerSecond > 0) || !(limit.burst >= 1)) throw new RangeError('rate limit: ratePerSecond must be > 0 and burst >= 1')
}

/**
 * At most this many buckets in one memory limiter: API key and claim buckets are made only for keys that
 * verified, but the dashboard sign-in's are keyed by client address, which anyone reaching the port chooses.
 */
const MAX_MEMORY_BUCKETS = 100_000

/**
 * Token buckets in memory, one per key, refilled from the injected clock. A bucket that has refilled to
 * `burst` is the same as no bucket, so each is dropped once full (swept at most once per refill time): the
 * map holds only keys used within about two refill times, whatever became of the others (a revoked key, a
 * deleted claim), besides forget(); and at most maxKeys of them: a new key past it is refused until a bucket refills.
 */
export function memoryRateBuckets(
  clock: Clock,
  limit: Readonly<RateLimit>,
  maxKeys = MAX_MEMORY_BUCKETS,
): RateBuckets & { size(): number } {
  checkLimit(limit)
  const buckets = new Map<string, { tokens: number; at: number }>()
  const fullAfterMs = (tokens: number) => ((limit.burst - tokens) / limit.ratePerSecond) * 1000
  let sweptAt = clock.now().getTime()
  const sweep = (now: number) => {
    if (now - sweptAt < fullAfterMs(0)) return
    sweptAt = now
    for (const [key, b] of buckets) if (now - b.at >= fullAfterMs(b.tokens)) buckets.delete(key)
  }
  return {
    async take(key) {
      const now = clock.now().getTime()
      sweep(now)
      const known = buckets.get(key)
      // a key seen for the first time while the map is full is refused, not tracked: keys can be untrusted input
      // (the dashboard sign-in's client addresses); the sweep above, at most once per refill time, makes room
      if (!known && buckets.size >= maxKeys) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(fullAfterMs(0) / 1000)) }
      const b = known ?? { tokens: limit.burst, at: now }
      b.tokens = Math.min(limit.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * limit.ratePerSecond)
      b.at = now
      buckets.set(key, b)
      if (b.tokens >= 1) {
        b.tokens -= 1
        return { ok: true }
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / limit.ratePerSecond)) }
    },
    async forget(key) {
      buckets.delete(key)
    },
    size() {
      sweep(clock.now().getTime())
      return buckets.size
    },
  }
}

/** A limiter on these buckets, counting its refusals. */
export function countRefusals<B extends RateBuckets>(buckets: B): B & RateLimiter {
  let refused = 0
  return {
    ...buckets,
    async take(key) {
      const decision = await buckets.take(key)
      if (!decision.ok) refused++
      return decision
    },
    refused: () => refused,
  }
}

/**
 * The control plane's rate limits in memory (Mode 1), one bucket per API key id or claim id. Only keys that
 * verified get a bucket, so there are at most as many buckets as keys in use. Cluster mode keeps the buckets
 * in Redis behind the same take() call (RateLimiterFactory).
 */
export function createRateLimiter(clock: Clock, limit: Readonly<RateLimit> = DEFAULT_RATE_LIMIT): RateLimiter & { size(): number } {
  return countRefusals(memoryRateBuckets(clock, limit))
}

/** Every limiter in this process's memory: Mode 1's factory. */
export const memoryRateLimiters =
  (clock: Clock): RateLimiterFactory =>
  (_name, limit) =>
    createRateLimiter(clock, limit)
