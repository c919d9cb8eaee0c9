import { EventLoopDelayed } from '../errors.ts'
import type { HealthCheck } from './health.ts'

/** The longest the event loop was blocked, read and restarted by each look. */
export interface EventLoopDelay {
  /** the longest delay since the previous call (ms) */
  takeMaxMs(): number
  stop(): void
}

export const DEFAULT_EVENT_LOOP_MAX_DELAY_MS = 1000

/**
 * The system implementation: a timer every resolutionMs (unref'd) notes how late it fires. (perf_hooks'
 * monitorEventLoopDelay cannot serve: its reset() also drops the delay being measured, so a block that
 * spans a look would never be seen.)
 */
export function monitorEventLoop(resolutionMs = 100): EventLoopDelay {
  let maxMs = 0
  let expected = performance.now() + resolutionMs
  const timer = setInterval(() => {
    const now = performance.now()
    maxMs = Math.max(maxMs, now - expected)
    expected = now + resolutionMs
  }, resolutionMs)
  timer.unref()
  return {
    takeMaxMs() {
      const taken = maxMs
      maxMs = 0
      return taken
    },
    stop: () => clearInterval(timer),
  }
}

/**
 * Liveness (GET /healthz): answering at all shows the event loop turns; this adds that it was never blocked
 * longer than maxDelayMs since the previous look, so a process that limps (CPU starved, a long synchronous
 * task) is reported before it stops answering.
 */
export function eventLoopCheck(delay: Pick<EventLoopDelay, 'takeMaxMs'>, maxDelayMs = DEFAULT_EVENT_LOOP_MAX_DELAY_MS): HealthCheck {
  return async () => {
    const delayMs = Math.round(delay.takeMaxMs())
    if (delayMs > maxDelayMs) throw new EventLoopDelayed(delayMs, maxDelayMs)
  }
}
