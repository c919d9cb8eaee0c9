import type { Redis } from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'
import type { TokenBucketOptions } from './token-bucket.ts'

/**
 * limits.connectRatePerClientId across the nodes of a cluster: a device that hops nodes spends one
 * budget. rate-limiter-flexible's Redis limiter (one atomic script per CONNECT) counts fixed windows,
 * so the token bucket becomes `burst` CONNECTs per burst/ratePerSecond seconds (the default: 20 per
 * 100 s; the same long-run rate, a burst of at most twice `burst` across a window's edge). While Redis
 * is away its in-memory insurance limiter (the same window, per node) takes over instead of failing.
 *
 * What stays per node, and why: the per-frame packet budget and the publish message and byte buckets
 * are spent per packet on the connection's own node, where a Redis round trip per packet would cost
 * more than the packet, and a device's connection lives on one node at a time; they start full when a
 * device moves, as they do when it reconnects to one node after a restart. The per-address gate is per
 * listener by nature.
 */
export function clusterConnectRate(redis: Redis, bucket: TokenBucketOptions): { tryTake(key: string): Promise<boolean> } {
  const points = Math.max(1, Math.floor(bucket.burst))
  const duration = Math.max(1, Math.ceil(bucket.burst / bucket.ratePerSecond))
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: 'gh:connect-rate',
    points,
    duration,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: 'gh:connect-rate', points, duration }),
  })
  return {
    async tryTake(key) {
      try {
        await limiter.consume(key)
        return true
      } catch (res) {
        if (res instanceof RateLimiterRes) return false
        throw res
      }
    },
  }
}
