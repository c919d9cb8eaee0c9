import type Database from 'better-sqlite3'
import type { AiUsageLease, AiUsageRecord, AiUsageSettlement, AiUsageStore, StoredInsight } from './ai-usage-store.ts'
import { storeWrite as write } from './store-failure.ts'
import type { TransactionGate } from './transaction-gate.ts'
import { toUsage, type Row } from './record-rows.ts'

function prepare(db: Database.Database) {
  return {
    getUsage: db.prepare('SELECT * FROM ai_usage WHERE device_id = ? AND day = ?'),
    addUsage: db.prepare(
      `INSERT INTO ai_usage (device_id, day, requests, tokens) VALUES (?, ?, ?, ?)
       ON CONFLICT (device_id, day) DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens`,
    ),
    ensureUsage: db.prepare('INSERT OR IGNORE INTO ai_usage (device_id, day, requests, tokens) VALUES (?, ?, 0, 0)'),
    leaseUsage: db.prepare('UPDATE ai_usage SET requests = requests + ? WHERE device_id = ? AND day = ?'),
    settleUsage: db.prepare('UPDATE ai_usage SET requests = MAX(0, requests - ?), tokens = tokens + ? WHERE device_id = ? AND day = ?'),
    listUsage: db.prepare('SELECT * FROM ai_usage WHERE device_id = ? AND day >= ? AND day <= ? ORDER BY day'),
    pruneUsage: db.prepare('DELETE FROM ai_usage WHERE day < ?'),
    insertInsight: db.prepare('INSERT OR REPLACE INTO insights (id, device_id, at, data) VALUES (?, ?, ?, ?)'),
    pruneInsights: db.prepare(
      `DELETE FROM insights WHERE device_id = ? AND rowid NOT IN
         (SELECT rowid FROM insights WHERE device_id = ? ORDER BY at DESC, rowid DESC LIMIT ?)`,
    ),
    listInsights: db.prepare('SELECT * FROM insights WHERE device_id = ? ORDER BY at DESC, rowid DESC LIMIT ?'),
  }
}

/**
 * AiUsageStore on the registry's SQLite connection (constructed by SqliteRegistryStore; tables of migration 3).
 * Each call goes through the connection's TransactionGate, so it never lands inside another flow's open
 * transaction; it runs at once (synchronously underneath) when none is open.
 */
export class SqliteAiUsageStore implements AiUsageStore {
  readonly #db: Database.Database
  readonly #gate: TransactionGate
  #prepared: ReturnType<typeof prepare> | undefined

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#db = db
    this.#gate = gate
  }

  /** Prepared on first use: a read-only registry of an older schema (no migration 3 yet) still opens. */
  get #s(): ReturnType<typeof prepare> {
    this.#prepared ??= prepare(this.#db)
    return this.#prepared
  }

  getUsage(deviceId: string, day: string): Promise<AiUsageRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getUsage.get(deviceId, day) as Row | undefined
      return r && toUsage(r)
    })
  }

  addUsage(deviceId: string, day: string, requests: number, tokens: number): Promise<void> {
    return this.#gate.run(() => {
      write(() => this.#s.addUsage.run(deviceId, day, requests, tokens))
    })
  }

  leaseRequests(deviceId: string, day: string, requests: number, maxRequests: number): Promise<AiUsageLease> {
    // IMMEDIATE: the write lock is taken before the read, so two processes cannot both grant the last requests
    return this.#gate.run(() =>
      write(() =>
        this.#db
          .transaction((): AiUsageLease => {
            this.#s.ensureUsage.run(deviceId, day)
            const r = toUsage(this.#s.getUsage.get(deviceId, day) as Row)
            const granted = Math.max(0, Math.min(requests, maxRequests - r.requests))
            if (granted > 0) this.#s.leaseUsage.run(granted, deviceId, day)
            return { granted, requests: r.requests + granted, tokens: r.tokens }
          })
          .immediate(),
      ),
    )
  }

  settleUsage(settlements: readonly AiUsageSettlement[]): Promise<void> {
    if (settlements.length === 0) return Promise.resolve()
    return this.#gate.run(() =>
      write(() =>
        this.#db
          .transaction(() => {
            for (const { deviceId, day, returnedRequests, tokens } of settlements) {
              this.#s.ensureUsage.run(deviceId, day)
              this.#s.settleUsage.run(returnedRequests, tokens, deviceId, day)
            }
          })
          .immediate(),
      ),
    )
  }

  listUsage(deviceId: string, fromDay: string, toDay: string): Promise<AiUsageRecord[]> {
    return this.#gate.run(() => (this.#s.listUsage.all(deviceId, fromDay, toDay) as Row[]).map(toUsage))
  }

  pruneUsage(beforeDay: string): Promise<number> {
    return this.#gate.run(() => write(() => this.#s.pruneUsage.run(beforeDay).changes))
  }

  appendInsights(insights: readonly StoredInsight[], keepPerDevice: number): Promise<void> {
    if (insights.length === 0) return Promise.resolve()
    return this.#gate.run(() =>
      write(() =>
        this.#db
          .transaction(() => {
            for (const i of insights) this.#s.insertInsight.run(i.id, i.deviceId, i.at, JSON.stringify(i.data))
            for (const deviceId of new Set(insights.map((i) => i.deviceId))) this.#s.pruneInsights.run(deviceId, deviceId, keepPerDevice)
          })
          .immediate(),
      ),
    )
  }

  listInsights(deviceId: string, limit: number): Promise<StoredInsight[]> {
    return this.#gate.run(() =>
      (this.#s.listInsights.all(deviceId, limit) as Row[]).map((r) => ({
        id: String(r.id),
        deviceId: String(r.device_id),
        at: String(r.at),
        data: JSON.parse(String(r.data)) as Record<string, unknown>,
      })),
    )
  }
}
