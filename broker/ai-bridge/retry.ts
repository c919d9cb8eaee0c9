import { sleep, type Random, type Timers } from '../../certs/index.ts'
import type { FailureInfo } from './providers/provider.ts'

export interface RetryOptions {
  /** retries after the first attempt */
  max: number
  baseDelayMs: number
  maxDelayMs: number
}

/** A fraction in [0, 1) from the injected Random. */
export function randomFraction(random: Random): number {
  const b = random.bytes(4)
  return ((((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0)) >>> 0) / 2 ** 32
}

/**
 * Exponential back-off with "equal jitter": half of min(maxDelayMs, baseDelayMs * 2^retry), plus a
 * random part up to the other half, so that devices that failed together do not retry together.
 */
export function backoffDelay(retry: number, o: RetryOptions, fraction: number): number {
  const ceiling = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** retry)
  return Math.round(ceiling / 2 + (ceiling / 2) * fraction)
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or `max` retries were made.
 * A failure's Retry-After (retryAfterMs) replaces the back-off; one longer than maxDelayMs ends the
 * retries instead of holding a worker that long.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  o: RetryOptions & { timers: Timers; random: Random; signal?: AbortSignal; onRetry?(err: unknown, delayMs: number, retry: number): void },
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await attempt()
    } catch (err) {
      const info = (err ?? {}) as FailureInfo
      if (o.signal?.aborted || info.retryable !== true || retry >= o.max) throw err
      let delay = backoffDelay(retry, o, randomFraction(o.random))
      if (info.retryAfterMs !== undefined) {
        if (info.retryAfterMs > o.maxDelayMs) throw err
        delay = info.retryAfterMs
      }
      o.onRetry?.(err, delay, retry + 1)
      await sleep(o.timers, delay, o.signal)
    }
  }
}
