/**
 * The one timer interface (the broker's session sweep; the AI bridge's window flushes, retry back-off
 * and request timeouts; the device simulator's reconnects and renewals), injected like the Clock beside
 * it (docs/conventions.md §13) so that tests move time with fixedClock().advance() and fake timers
 * (test/helpers/fake-timers.ts). Logic never calls setTimeout or setInterval itself: it asks `deps.timers`.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** The real timers, unref'd: a pending sweep, window flush or retry never keeps the process alive on its own. */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>)
  },
}

/** Resolves after `ms` on `timers`; rejects with the signal's reason when it aborts first. */
export function sleep(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      timers.clearTimeout(handle)
      reject(signal?.reason)
    }
    const handle = timers.setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      },
      Math.max(0, ms),
    )
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
