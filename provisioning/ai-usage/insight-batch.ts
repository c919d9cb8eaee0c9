import type { Logger } from 'pino'
import type { Timers } from '../../certs/index.ts'
import type { AiUsageStore, StoredInsight } from '../store/ai-usage-store.ts'

export interface InsightBatchOptions {
  /** insights kept per device (the store prunes to it) */
  keepPerDevice: number
  /** how long an insight waits for its batch, ms */
  flushMs: number
  /** insights held at most: one more writes the batch at once */
  maxPending: number
}

export interface InsightBatch {
  /** Holds the insight; at maxPending held it writes the batch at once and answers that write (its failure rejects). */
  add(insight: StoredInsight): Promise<void>
  /** the device's insights not written yet, newest first */
  pendingOf(deviceId: string): StoredInsight[]
  /**
   * Writes what is held, in one transaction; a failure keeps it (within maxPending) for the next flush, and
   * rejects. The store call is made before flush() returns (SQLite writes at once when no transaction is open).
   */
  flush(): Promise<void>
  /** The last flush (the control plane's close): a failure rejects and the insights are dropped, never retried against a closed store. */
  close(): Promise<void>
  pending(): number
}

/**
 * Insights written behind (docs/ai-bridge.md, "Budgets"): the AI bridge's insights are held and written
 * together, one transaction per `flushMs` (or per `maxPending` insights) instead of one each (with the
 * registry's synchronous=FULL, a transaction is an fsync of the WAL). The service reads the held ones
 * together with the stored ones, so its readers see an insight at once. A crash loses the insights of the
 * last `flushMs` (at most `maxPending`); the devices had received them, and the daily usage is counted
 * apart (broker/ai-bridge/budgets.ts). A failed write keeps the newest `maxPending` for the next flush.
 */
export function createInsightBatch(
  deps: { store: AiUsageStore; timers: Timers; log?: Logger },
  options: InsightBatchOptions,
): InsightBatch {
  let held: StoredInsight[] = []
  // batches handed to the store and not yet written: readers still see them
  const writing = new Set<StoredInsight[]>()
  let timer: unknown = null
  let closed = false

  function flush(): Promise<void> {
    if (timer !== null) deps.timers.clearTimeout(timer)
    timer = null
    if (held.length === 0) return Promise.resolve()
    const batch = held
    held = []
    writing.add(batch)
    return deps.store.appendInsights(batch, options.keepPerDevice).then(
      () => {
        writing.delete(batch)
      },
      (err: unknown) => {
        writing.delete(batch)
        if (!closed) {
          held = [...batch, ...held].slice(-options.maxPending)
          arm()
        }
        throw err
      },
    )
  }

  function arm(): void {
    timer ??= deps.timers.setTimeout(() => {
      timer = null
      flush().catch((err: unknown) => deps.log?.error({ err, held: held.length }, 'storing insights failed; kept for the next flush'))
    }, options.flushMs)
  }

  return {
    add(insight) {
      held.push(insight)
      if (held.length >= options.maxPending) return flush()
      arm()
      return Promise.resolve()
    },
    pendingOf(deviceId) {
      const out: StoredInsight[] = []
      for (let i = held.length - 1; i >= 0; i--) if ((held[i] as StoredInsight).deviceId === deviceId) out.push(held[i] as StoredInsight)
      for (const batch of [...writing].reverse())
        for (let i = batch.length - 1; i >= 0; i--)
          if ((batch[i] as StoredInsight).deviceId === deviceId) out.push(batch[i] as StoredInsight)
      return out
    },
    flush,
    close() {
      closed = true
      return flush()
    },
    pending: () => held.length,
  }
}
