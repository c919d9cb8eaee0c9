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
  /**
   * Takes `n` tokens if there are that many; false (and takes none) otherwise. `nowMs`: the clock's time
   * when the caller already read it (one read per packet, shared by a packet's buckets).
   */
  tryTake(n?: number, nowMs?: number): boolean
  /** Tokens available now (fractional). */
  available(): number
  /**
   * Takes a new rate and burst from now on, keeping what was spent: the tokens earned so far at the old
   * rate stay, capped at the new burst, and nothing is refilled by the change (a raised burst is earned).
   */
  reconfigure(options: TokenBucketOptions): void
  /** The rate and burst in force. */
  options(): TokenBucketOptions
}

export function createTokenBucket(options: TokenBucketOptions, clock: Clock): TokenBucket {
  return new Bucket(options, clock)
}

/**
 * A bucket is four numbers and its clock, with its methods on the prototype: the broker keeps one per
 * device and limit (three per connected device, plus its connect budget), so a bucket of closures (~1.2 KB
 * and ~11 us to make, measured) was a large part of what a connection cost beyond aedes.
 */
class Bucket implements TokenBucket {
  #tokens: number
  #last: number
  #ratePerSecond: number
  #burst: number
  readonly #clock: Clock
  /** the CLOCK recency mark of createKeyedTokenBuckets (taken since the sweep last passed it) */
  used = false

  /** `nowMs`: the caller's clock read, when it has one (a keyed bucket made by a packet's take) */
  constructor(options: TokenBucketOptions, clock: Clock, nowMs?: number) {
    assertBucketOptions(options)
    this.#ratePerSecond = options.ratePerSecond
    this.#burst = options.burst
    this.#tokens = options.burst
    this.#clock = clock
    this.#last = nowMs ?? clock.now().getTime()
  }

  #refill(now = this.#clock.now().getTime()): void {
    // A clock that steps back (NTP) must not mint or burn tokens.
    if (now > this.#last) this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#ratePerSecond)
    this.#last = Math.max(this.#last, now)
  }

  tryTake(n = 1, nowMs?: number): boolean {
    this.#refill(nowMs)
    if (this.#tokens < n) return false
    this.#tokens -= n
    return true
  }

  available(): number {
    this.#refill()
    return this.#tokens
  }

  reconfigure(next: TokenBucketOptions): void {
    assertBucketOptions(next)
    this.#refill()
    this.#ratePerSecond = next.ratePerSecond
    this.#burst = next.burst
    this.#tokens = Math.min(this.#tokens, this.#burst)
  }

  options(): TokenBucketOptions {
    return { ratePerSecond: this.#ratePerSecond, burst: this.#burst }
  }
}

export interface KeyedTokenBucketsOptions extends TokenBucketOptions {
  /** Upper bound on remembered keys; the least recently used key is forgotten first. */
  maxKeys: number
}

export interface KeyedTokenBuckets {
  /** TokenBucket.tryTake of the key's bucket */
  tryTake(key: string, n?: number, nowMs?: number): boolean
  /** Number of keys currently remembered (for tests and metrics). */
  size(): number
  delete(key: string): void
  /**
   * Gives `key` its own rate and burst (undefined: back to the shared options), live: an existing
   * bucket keeps what it spent (TokenBucket.reconfigure); a new one starts full at these options.
   */
  configure(key: string, options: TokenBucketOptions | undefined): void
  /** The rate and burst `key` is held to now. */
  optionsOf(key: string): TokenBucketOptions
}

/** At most this many recently used keys get a second chance per eviction (the sweep's bound). */
const SECOND_CHANCES = 64

/**
 * One bucket per key (device id, remote address), with bounded memory: past `maxKeys` a least recently
 * used bucket is dropped. A dropped key starts again with a full bucket, which only matters when more
 * than maxKeys keys are active at once.
 *
 * Recency is the CLOCK approximation of LRU, so a take costs a flag write, not a Map re-insertion (the
 * per-packet delete + set it replaced showed in the publish path's profile): a take marks its entry used;
 * when a new key needs room, the front of the Map (the oldest inserted) is dropped unless it was used since
 * it was last passed, in which case it moves to the back with its mark cleared (a second chance), at most
 * SECOND_CHANCES times per eviction. The bound holds exactly; the key dropped is one not used since the
 * sweep last passed it (or, when the SECOND_CHANCES keys at the front were all used, the front one).
 */
export function createKeyedTokenBuckets(options: KeyedTokenBucketsOptions, clock: Clock): KeyedTokenBuckets {
  assertBucketOptions(options)
  if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) {
    throw new BrokerOptionInvalid('maxKeys', `must be a positive integer, got ${options.maxKeys}`)
  }
  const shared: TokenBucketOptions = { ratePerSecond: options.ratePerSecond, burst: options.burst }
  const buckets = new Map<string, Bucket>()
  function evictOne(): void {
    for (let chances = 0; ; chances++) {
      const oldest = buckets.entries().next()
      if (oldest.done) return
      const [key, entry] = oldest.value
      buckets.delete(key)
      if (!entry.used || chances >= SECOND_CHANCES) return
      entry.used = false
      buckets.set(key, entry)
    }
  }
  function touch(key: string, own?: TokenBucketOptions, nowMs?: number): Bucket {
    const existing = buckets.get(key)
    if (existing) {
      existing.used = true
      return existing
    }
    if (buckets.size >= options.maxKeys) evictOne()
    const bucket = new Bucket(own ?? shared, clock, nowMs)
    buckets.set(key, bucket)
    return bucket
  }
  return {
    tryTake: (key, n = 1, nowMs) => touch(key, undefined, nowMs).tryTake(n, nowMs),
    size: () => buckets.size,
    delete: (key) => void buckets.delete(key),
    configure(key, own) {
      const next = own ?? shared
      assertBucketOptions(next)
      const existing = buckets.has(key)
      // a key without a bucket, put on the shared options, needs none yet: its first take makes the same one, full
      if (!existing && own === undefined) return
      const bucket = touch(key, next)
      if (existing) bucket.reconfigure(next)
    },
    optionsOf: (key) => buckets.get(key)?.options() ?? shared,
  }
}

function assertBucketOptions({ ratePerSecond, burst }: TokenBucketOptions): void {
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) {
    throw new BrokerOptionInvalid('ratePerSecond', `must be a positive number, got ${ratePerSecond}`)
  }
  if (!(Number.isFinite(burst) && burst >= 1)) throw new BrokerOptionInvalid('burst', `must be >= 1, got ${burst}`)
}
