import type { Clock } from '../certs/index.ts'
import { BrokerOptionInvalid } from './errors.ts'

/**
 * Token buckets read time only from the injected clock (docs/conventions.md §13), so tests drive them with
 * fixedClock().advance(). Pure apart from the clock: no timers. The AI bridge reuses these.
 */
export interface TokenBucketOptions {
  /** tokens added per second */
  ratePerSecond: number
  /** bucket size: the largest burst; a new bucket starts full */
  burst: number
}

export interface TokenBucket {
  /** Takes `n` tokens if there are that many; false (and takes none) otherwise. */
  tryTake(n?: number): boolean
  /** Tokens available now (fractional). */
  available(): number
}

export function createTokenBucket(options: TokenBucketOptions, clock: Clock): TokenBucket {
  assertBucketOptions(options)
  const { ratePerSecond, burst } = options
  let tokens = burst
  let last = clock.now().getTime()

  function refill(): void {
    const now = clock.now().getTime()
    // A clock that steps back (NTP) must not mint or burn tokens.
    if (now > last) tokens = Math.min(burst, tokens + ((now - last) / 1000) * ratePerSecond)
    last = Math.max(last, now)
  }

  return {
    tryTake(n = 1) {
      refill()
      if (tokens < n) return false
      tokens -= n
      return true
    },
    available() {
      refill()
      return tokens
    },
  }
}

export interface KeyedTokenBucketsOptions extends TokenBucketOptions {
  /** Upper bound on remembered keys; the least recently used key is forgotten first. */
  maxKeys: number
}

export interface KeyedTokenBuckets {
  tryTake(key: string, n?: number): boolean
  /** Number of keys currently remembered (for tests and metrics). */
  size(): number
  delete(key: string): void
}

/**
 * One bucket per key (device id, remote address), with bounded memory: past `maxKeys` the least
 * recently used bucket is dropped. A dropped key starts again with a full bucket, which only matters
 * when more than maxKeys keys are active at once.
 */
export function createKeyedTokenBuckets(options: KeyedTokenBucketsOptions, clock: Clock): KeyedTokenBuckets {
  assertBucketOptions(options)
  if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) {
    throw new BrokerOptionInvalid('maxKeys', `must be a positive integer, got ${options.maxKeys}`)
  }
  const buckets = new Map<string, TokenBucket>()
  return {
    tryTake(key, n = 1) {
      let bucket = buckets.get(key)
      if (bucket) {
        buckets.delete(key) // re-insert below: Map order is our LRU order
      } else {
        bucket = createTokenBucket(options, clock)
        if (buckets.size >= options.maxKeys) {
          const oldest = buckets.keys().next()
          if (!oldest.done) buckets.delete(oldest.value)
        }
      }
      buckets.set(key, bucket)
      return bucket.tryTake(n)
    },
    size: () => buckets.size,
    delete: (key) => void buckets.delete(key),
  }
}

function assertBucketOptions({ ratePerSecond, burst }: TokenBucketOptions): void {
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) {
    throw new BrokerOptionInvalid('ratePerSecond', `must be a positive number, got ${ratePerSecond}`)
  }
  if (!(Number.isFinite(burst) && burst >= 1)) throw new BrokerOptionInvalid('burst', `must be >= 1, got ${burst}`)
}
