import type { UsageLedger } from './bridge-deps.ts'

/**
 * The daily AI budgets in memory, with write-behind to the UsageLedger (docs/ai-bridge.md, "Budgets").
 *
 * A node leases a slice of a device's remaining daily requests from the ledger, atomically (the ledger
 * adds the slice to the day's requests only while that stays within the budget), and spends it
 * locally: N nodes on one registry never grant more than the budget together, and a request costs no
 * registry access while the slice lasts. The AI tokens a request spent are added locally. flush()
 * settles every device in one ledger call (gives back the unspent requests, adds the tokens); the bridge calls it every
 * `usageFlushSeconds` and on detach. A crash loses the tokens counted since the last flush and leaves
 * the unspent slice counted as used (a device loses at most one slice of that day's requests; it never
 * gets any back).
 */
export type BudgetVerdict = 'ok' | 'daily-requests' | 'daily-tokens'

export interface DailyBudgets {
  /** Takes one request of the device's day (leasing a slice when the local one is spent), after the token check. */
  take(deviceId: string, day: string, limits: { dailyRequests: number; dailyTokens: number }): Promise<BudgetVerdict>
  /** Is the day's request budget known to be spent here (the last lease granted nothing)? No ledger access. */
  knownSpent(deviceId: string, day: string): boolean
  /** A taken request that was not made after all (refused by an open circuit): back into the slice. */
  giveBack(deviceId: string, day: string): void
  /** The AI tokens a request of that day spent. */
  spend(deviceId: string, day: string, tokens: number): void
  /** Settles every device with the ledger; what fails is kept for the next flush. */
  flush(): Promise<void>
  tracked(): number
}

interface Entry {
  day: string
  /** leased requests not spent yet */
  leased: number
  /** tokens spent here and not yet settled */
  tokens: number
  /** the day's requests in the ledger (all nodes', our unspent lease included), as of the last lease or flush */
  ledgerRequests: number
  /** the day's tokens in the ledger, as of the last lease or flush */
  ledgerTokens: number
  /** the last lease granted nothing */
  spent: boolean
}

type Owed = { deviceId: string; day: string; requests: number; tokens: number }

/** Requests leased at once: 1% of the daily budget, at least 1, at most 100. */
export const leaseSlice = (dailyRequests: number): number => Math.max(1, Math.min(100, Math.floor(dailyRequests / 100)))

export function createDailyBudgets(ledger: UsageLedger, options: { maxTrackedDevices: number }): DailyBudgets {
  const entries = new Map<string, Entry>()
  let owed: Owed[] = []

  function settleLater(deviceId: string, e: Entry): void {
    if (e.leased > 0 || e.tokens > 0) owed.push({ deviceId, day: e.day, requests: e.leased, tokens: e.tokens })
    e.ledgerRequests -= e.leased
    e.ledgerTokens += e.tokens
    e.leased = 0
    e.tokens = 0
  }

  function entryOf(deviceId: string, day: string): Entry {
    let e = entries.get(deviceId)
    if (e && e.day !== day) {
      settleLater(deviceId, e)
      e = undefined
    }
    if (!e) {
      e = { day, leased: 0, tokens: 0, ledgerRequests: 0, ledgerTokens: 0, spent: false }
      if (entries.size >= options.maxTrackedDevices) {
        const oldest = entries.entries().next()
        if (!oldest.done) {
          settleLater(oldest.value[0], oldest.value[1])
          entries.delete(oldest.value[0])
        }
      }
      entries.set(deviceId, e)
    }
    return e
  }

  return {
    async take(deviceId, day, limits) {
      let e = entryOf(deviceId, day)
      // a budget lowered since the lease: what the day may no longer spend goes back at the next flush
      const room = Math.max(0, limits.dailyRequests - (e.ledgerRequests - e.leased))
      if (e.leased > room) {
        owed.push({ deviceId, day, requests: e.leased - room, tokens: 0 })
        e.ledgerRequests -= e.leased - room
        e.leased = room
      }
      if (e.leased === 0 && limits.dailyRequests > 0) {
        const lease = await ledger.lease(deviceId, day, leaseSlice(limits.dailyRequests), limits.dailyRequests)
        if (entries.get(deviceId) !== e) {
          // flushed out (evicted, day changed) while the lease was on its way: keep the grant anyway
          const now = entryOf(deviceId, day)
          if (now.day !== e.day) owed.push({ deviceId, day: e.day, requests: lease.granted, tokens: 0 })
          else now.leased += lease.granted
          e = now
        } else e.leased += lease.granted
        e.ledgerRequests = lease.requests
        e.ledgerTokens = lease.tokens
        e.spent = lease.granted === 0
      }
      if (e.leased === 0) return 'daily-requests'
      if (e.ledgerTokens + e.tokens >= limits.dailyTokens) return 'daily-tokens'
      e.leased--
      return 'ok'
    },
    knownSpent(deviceId, day) {
      const e = entries.get(deviceId)
      return e !== undefined && e.day === day && e.leased === 0 && e.spent
    },
    giveBack(deviceId, day) {
      const e = entries.get(deviceId)
      if (e && e.day === day) e.leased++
      else owed.push({ deviceId, day, requests: 1, tokens: 0 })
    },
    spend(deviceId, day, tokens) {
      if (tokens <= 0) return
      const e = entries.get(deviceId)
      if (e && e.day === day) e.tokens += tokens
      else owed.push({ deviceId, day, requests: 0, tokens })
    },
    async flush() {
      for (const [id, e] of entries) {
        settleLater(id, e)
        e.spent = false // a flush may have given requests back on other nodes: ask again
      }
      const batch = owed
      owed = []
      if (batch.length === 0) return
      try {
        // every device at once: one transaction (one fsync on SQLite) per flush, not one per device
        await ledger.settle(batch.map((o) => ({ deviceId: o.deviceId, day: o.day, returnedRequests: o.requests, tokens: o.tokens })))
      } catch (err) {
        // nothing of the batch was written: all of it is owed again (bounded, as the devices tracked)
        for (const o of batch) if (owed.length < options.maxTrackedDevices) owed.push(o)
        throw err
      }
    },
    tracked: () => entries.size,
  }
}
