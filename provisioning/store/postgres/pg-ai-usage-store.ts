import type { AiUsageLease, AiUsageRecord, AiUsageSettlement, AiUsageStore, StoredInsight } from '../ai-usage-store.ts'
import type { PgDatabase, Row } from './pg-database.ts'
import { date, json } from './pg-rows.ts'
import { toUsage } from '../record-rows.ts'

/**
 * Newest first, ties by arrival as SQLite's rowid orders them: the table has no arrival column (its columns
 * are SQLite's, which `gatehouse migrate` copies one for one), so the inserting transaction stands for it
 * (age(xmin): the youngest first; a row stored again under its id is a new version, the newest, as SQLite's
 * INSERT OR REPLACE gives it a new rowid), then the row's place in the table for rows of one transaction
 * (a migration's copy, inserted in rowid order).
 */
const NEWEST_FIRST = 'at DESC, age(xmin), ctid DESC'

/**
 * AiUsageStore on the registry's PostgreSQL database (constructed by PgRegistryStore; tables of migration
 * 3). Its writes do not take the registry's writer lock: a usage row is outside the services'
 * read-check-write rules, and the AI bridge's leases and settlements must neither wait for nor hold up
 * registry changes. Each write is atomic on its own, across every node: adding and settling (a whole batch)
 * are one upsert each (the row is locked by the statement); a lease reads and updates the day's row under a row lock
 * (`SELECT ... FOR UPDATE` in one transaction), so leases from any number of nodes take turns on that row
 * and never grant more than `maxRequests` together.
 */
export class PgAiUsageStore implements AiUsageStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  async getUsage(deviceId: string, day: string): Promise<AiUsageRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM ai_usage WHERE device_id = $1 AND day = $2', [deviceId, day])
    return r && toUsage(r)
  }

  async addUsage(deviceId: string, day: string, requests: number, tokens: number): Promise<void> {
    await this.#db.execute(
      `INSERT INTO ai_usage (device_id, day, requests, tokens) VALUES ($1, $2, $3, $4)
       ON CONFLICT (device_id, day) DO UPDATE SET requests = ai_usage.requests + excluded.requests, tokens = ai_usage.tokens + excluded.tokens`,
      [deviceId, day, requests, tokens],
    )
  }

  leaseRequests(deviceId: string, day: string, requests: number, maxRequests: number): Promise<AiUsageLease> {
    return this.#db.transactionWithoutWriterLock(async () => {
      await this.#db.execute('INSERT INTO ai_usage (device_id, day, requests, tokens) VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING', [
        deviceId,
        day,
      ])
      // the row lock: a lease on another connection waits here until this one commits, then reads what it left
      const [row] = await this.#db.query('SELECT * FROM ai_usage WHERE device_id = $1 AND day = $2 FOR UPDATE', [deviceId, day])
      const r = toUsage(row as Row)
      const granted = Math.max(0, Math.min(requests, maxRequests - r.requests))
      if (granted > 0)
        await this.#db.execute('UPDATE ai_usage SET requests = requests + $1 WHERE device_id = $2 AND day = $3', [granted, deviceId, day])
      return { granted, requests: r.requests + granted, tokens: r.tokens }
    })
  }

  /**
   * One upsert for the whole batch (one statement, so one transaction): the settlements merged per device
   * and day (an upsert may touch a row once; giving back r1 then r2 is giving back r1 + r2, as neither
   * takes a count below 0 sooner), inserted in key order so that two nodes settling the same devices lock
   * their rows in the same order.
   */
  async settleUsage(settlements: readonly AiUsageSettlement[]): Promise<void> {
    const merged = new Map<string, AiUsageSettlement>()
    for (const s of settlements) {
      const key = `${s.deviceId}\n${s.day}`
      const m = merged.get(key)
      merged.set(key, m ? { ...m, returnedRequests: m.returnedRequests + s.returnedRequests, tokens: m.tokens + s.tokens } : { ...s })
    }
    if (merged.size === 0) return
    const rows = [...merged.values()]
    await this.#db.execute(
      `WITH s AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS s(device_id, day, returned, tokens))
       INSERT INTO ai_usage (device_id, day, requests, tokens)
         SELECT device_id, day, 0, tokens FROM s ORDER BY device_id COLLATE "C", day COLLATE "C"
       ON CONFLICT (device_id, day) DO UPDATE SET
         requests = GREATEST(0, ai_usage.requests - (SELECT s.returned FROM s WHERE s.device_id = excluded.device_id AND s.day = excluded.day)),
         tokens = ai_usage.tokens + excluded.tokens`,
      [rows.map((r) => r.deviceId), rows.map((r) => r.day), rows.map((r) => r.returnedRequests), rows.map((r) => r.tokens)],
    )
  }

  async listUsage(deviceId: string, fromDay: string, toDay: string): Promise<AiUsageRecord[]> {
    const rows = await this.#db.query('SELECT * FROM ai_usage WHERE device_id = $1 AND day >= $2 AND day <= $3 ORDER BY day', [
      deviceId,
      fromDay,
      toDay,
    ])
    return rows.map(toUsage)
  }

  pruneUsage(beforeDay: string): Promise<number> {
    return this.#db.execute('DELETE FROM ai_usage WHERE day < $1', [beforeDay])
  }

  async appendInsights(insights: readonly StoredInsight[], keepPerDevice: number): Promise<void> {
    if (insights.length === 0) return
    await this.#db.transactionWithoutWriterLock(async () => {
      // oldest first, one row each: rows of one transaction are ordered by their place (ctid) in it
      for (const insight of insights) {
        await this.#db.execute(
          `INSERT INTO insights (id, device_id, at, data) VALUES ($1, $2, $3, $4)
           ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, at = excluded.at, data = excluded.data`,
          [insight.id, insight.deviceId, insight.at, JSON.stringify(insight.data)],
        )
      }
      for (const deviceId of new Set(insights.map((i) => i.deviceId))) {
        await this.#db.execute(
          `DELETE FROM insights WHERE device_id = $1 AND id NOT IN
             (SELECT id FROM insights WHERE device_id = $1 ORDER BY ${NEWEST_FIRST} LIMIT $2)`,
          [deviceId, keepPerDevice],
        )
      }
    })
  }

  async listInsights(deviceId: string, limit: number): Promise<StoredInsight[]> {
    const rows = await this.#db.query(`SELECT * FROM insights WHERE device_id = $1 ORDER BY ${NEWEST_FIRST} LIMIT $2`, [deviceId, limit])
    return rows.map((r) => ({ id: String(r.id), deviceId: String(r.device_id), at: date(r.at).toISOString(), data: json(r.data) }))
  }
}
