/**
 * The one way tests wait. Wait on a signal that the code under test gives (a packet, a listener's
 * call, a log line, a counter, a row), never for a fixed time. To show that something does NOT happen,
 * make a later marker happen on the same path (a message published after it, a report sent after it)
 * and wait for the marker: what should not have arrived would have arrived before it.
 * Time may pass only on an injected clock (fake-timers.ts).
 */

/**
 * Resolves with the first truthy value of `check` (awaited when it is a promise: an HTTP probe), re-checked
 * every `everyMs` (5 ms; more for a costly check); rejects after `timeoutMs` naming `what` (a function is
 * called then, to show the state it found).
 */
export async function waitFor<T>(
  check: () => T | PromiseLike<T>,
  timeoutMs = 2000,
  what: string | (() => string) = 'condition',
  everyMs = 5,
): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<Awaited<T>>
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
