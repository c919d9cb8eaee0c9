import type { Logger } from 'pino'
import type { Clock, Timers } from '../certs/index.ts'
import type { RegistryStore } from './store/registry-store.ts'

/** Persists when the broker last saw each device (docs/architecture.md, "The data directory"). */
export interface LastSeenRecorder {
  /** the device connected or disconnected now: O(1), never touches the database */
  seen(deviceId: string): void
  /** writes what is pending now, in one transaction (close() and tests); resolves when it and every earlier write have ended */
  flush(): Promise<void>
  /** stops the timer and writes what is pending */
  close(): Promise<void>
}

export const DEFAULT_LAST_SEEN_FLUSH_MS = 60_000

/**
 * Keeps the latest sighting per device in memory and writes them all in one batch every `flushMs`
 * (default a minute), so a device is written at most once per interval however often it reconnects,
 * and the broker's connect path never waits on SQLite. A failed write is logged and retried with the
 * next batch.
 */
export function createLastSeenRecorder(
  deps: { store: Pick<RegistryStore, 'recordLastSeen'>; clock: Clock; timers: Timers; log: Logger },
  options: { flushMs?: number } = {},
): LastSeenRecorder {
  const flushMs = options.flushMs ?? DEFAULT_LAST_SEEN_FLUSH_MS
  let pending = new Map<string, Date>()
  let timer: unknown
  let closed = false
  // the writes not yet ended: close() waits for them before the store closes
  let writing: Promise<void> = Promise.resolve()

  /** never rejects: a failed batch is logged and kept for the next one */
  async function write(batch: Map<string, Date>): Promise<void> {
    try {
      await deps.store.recordLastSeen([...batch].map(([deviceId, at]) => ({ deviceId, at })))
    } catch (err) {
      deps.log.warn({ err, devices: batch.size }, 'last-seen write failed; retried with the next batch')
      for (const [id, at] of batch) if (!pending.has(id)) pending.set(id, at)
      if (!closed) schedule()
    }
  }

  function flush(): Promise<void> {
    if (pending.size > 0) {
      const batch = pending
      pending = new Map()
      writing = Promise.all([writing, write(batch)]).then(() => {})
    }
    return writing
  }

  function tick(): void {
    timer = undefined
    void flush()
  }

  function schedule(): void {
    timer ??= deps.timers.setTimeout(tick, flushMs)
  }

  return {
    seen(deviceId) {
      if (closed) return
      pending.set(deviceId, deps.clock.now())
      schedule()
    },
    flush,
    close() {
      closed = true
      if (timer !== undefined) deps.timers.clearTimeout(timer)
      timer = undefined
      return flush()
    },
  }
}
