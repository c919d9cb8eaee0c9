/**
 * AI bridge accounting: requests and tokens per device and UTC day (the daily budgets read them), and
 * the last N insights per device. Implemented by SqliteAiUsageStore on the registry's SQLite
 * connection, PgAiUsageStore on its PostgreSQL database (cluster mode) and InMemoryAiUsageStore
 * (provisioning/ai-usage/) for tests. Every method answers with a Promise (docs/conventions.md §38).
 */
export interface AiUsageRecord {
  deviceId: string
  /** UTC date, 'YYYY-MM-DD' */
  day: string
  requests: number
  tokens: number
}

/** One device's day settled: `returnedRequests` unspent leased requests given back, `tokens` spent added. */
export interface AiUsageSettlement {
  deviceId: string
  /** UTC date, 'YYYY-MM-DD' */
  day: string
  returnedRequests: number
  tokens: number
}

/** What leaseRequests granted, and the day's counters after the grant. */
export interface AiUsageLease {
  granted: number
  requests: number
  tokens: number
}

export interface StoredInsight {
  id: string
  deviceId: string
  /** ISO 8601 */
  at: string
  /** the whole insight, as the data plane produced it */
  data: Record<string, unknown>
}

export interface AiUsageStore {
  getUsage(deviceId: string, day: string): Promise<AiUsageRecord | undefined>
  /** adds to the day's counters, creating the row */
  addUsage(deviceId: string, day: string, requests: number, tokens: number): Promise<void>
  /**
   * Leases requests of a day's budget, atomically (SQLite: one IMMEDIATE transaction; PostgreSQL: the
   * day's row locked, so that several broker processes or nodes on one registry never grant more than
   * `maxRequests` together): adds min(`requests`, what is left under `maxRequests`) to the day's requests
   * and answers that grant with the day's counters after it.
   */
  leaseRequests(deviceId: string, day: string, requests: number, maxRequests: number): Promise<AiUsageLease>
  /**
   * Settles leases, all in one transaction (the AI bridge's write-behind flush: one commit, one fsync on
   * SQLite, for every due device): each gives back `returnedRequests` (never below 0) and adds the `tokens`
   * spent, creating a missing day. A device and day may appear more than once (applied in turn).
   */
  settleUsage(settlements: readonly AiUsageSettlement[]): Promise<void>
  /** the days in [fromDay, toDay] that have usage, oldest first */
  listUsage(deviceId: string, fromDay: string, toDay: string): Promise<AiUsageRecord[]>
  /** deletes usage rows of days before `day`; returns how many */
  pruneUsage(beforeDay: string): Promise<number>
  /**
   * stores insights (the AI usage service's write-behind batch, oldest first) and keeps only the newest
   * `keepPerDevice` of each device they belong to, in one transaction
   */
  appendInsights(insights: readonly StoredInsight[], keepPerDevice: number): Promise<void>
  /** newest first */
  listInsights(deviceId: string, limit: number): Promise<StoredInsight[]>
}
