import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'
import type { TokenBucketOptions } from './token-bucket.ts'

/** rate-limiter-flexible, loaded by the first cluster limiter: a broker on one node never needs it (issue 14: idle RSS) */
const rateLimiterFlexible = (): typeof import('rate-limiter-flexible') => createRequire(import.meta.url)('rate-limiter-flexible')

/**
 * A rate limit shared by the nodes of a cluster, on Redis: rate-limiter-flexible's Redis limiter (one atomic
 * script per take) counts fixed windows, so a token bucket becomes `burst` takes per burst/ratePerSecond
 * seconds (the same long-run rate, a burst of at most twice `burst` across a window's edge). A key's counter
 * expires with its window, so Redis holds only keys used in the current one. While Redis is away its
 * in-memory insurance limiter (the same window, per node) takes over instead of failing. The control plane
 * takes it for its API key, claim and sign-in limits through the composition root (gatehouse.ts), matching
 * its RateBuckets structurally (docs/conventions.md §3).
 */
export function clusterRateLimiter(
  redis: Redis,
  keyPrefix: string,
  bucket: TokenBucketOptions,
): {
  take(key: string): Promise<{ ok: true } | { ok: false; retryAfterSeconds: number }>
  forget(key: string): Promise<void>
} {
  const { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } = rateLimiterFlexible()
  const points = Math.max(1, Math.floor(bucket.burst))
  const duration = Math.max(1, Math.ceil(bucket.burst / bucket.ratePerSecond))
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points,
    duration,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration }),
  })
  return {
    async take(key) {
      try {
        await limiter.consume(key)
        return { ok: true }
      } catch (res) {
        if (res instanceof RateLimiterRes) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) }
        throw res
      }
    },
    async forget(key) {
      await limiter.delete(key)
    },
  }
}

/**
 * limits.connectRatePerClientId across the nodes of a cluster: a device that hops nodes spends one
 * budget (the default: 20 CONNECTs per 100 s).
 *
 * What stays per node, and why: the per-frame packet budget and the publish message and byte buckets
 * are spent per packet on the connection's own node, where a Redis round trip per packet would cost
 * more than the packet, and a device's connection lives on one node at a time; they start full when a
 * device moves, as they do when it reconnects to one node after a restart. The per-address gate is per
 * listener by nature.
 */
export function clusterConnectRate(redis: Redis, bucket: TokenBucketOptions): { tryTake(key: string): Promise<boolean> } {
  const limiter = clusterRateLimiter(redis, 'gh:connect-rate', bucket)
  return {
    tryTake: async (key) => (await limiter.take(key)).ok,
  }
}
