import type Database from 'better-sqlite3'
import { type DashboardSessionRecord, type DashboardSessionStore, expiryCutoffs, type SessionBounds } from './dashboard-session-store.ts'
import { toDashboardSession, type Row } from './record-rows.ts'
import { storeWrite as write } from './store-failure.ts'
import type { TransactionGate } from './transaction-gate.ts'

function prepare(db: Database.Database) {
  return {
    sweep: db.prepare('DELETE FROM dashboard_sessions WHERE last_seen_at <= ? OR created_at <= ?'),
    insert: db.prepare(
      `INSERT OR REPLACE INTO dashboard_sessions (id_hash, key_id, key_name, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)`,
    ),
    // the oldest sign-ins (lowest seq) beyond the bound
    trim: db.prepare('DELETE FROM dashboard_sessions WHERE seq NOT IN (SELECT seq FROM dashboard_sessions ORDER BY seq DESC LIMIT ?)'),
    get: db.prepare('SELECT * FROM dashboard_sessions WHERE id_hash = ?'),
    touch: db.prepare('UPDATE dashboard_sessions SET last_seen_at = ? WHERE id_hash = ?'),
    remove: db.prepare('DELETE FROM dashboard_sessions WHERE id_hash = ?'),
    removeForKey: db.prepare('DELETE FROM dashboard_sessions WHERE key_id = ?'),
    count: db.prepare('SELECT COUNT(*) AS n FROM dashboard_sessions'),
  }
}

/**
 * DashboardSessionStore on the registry's SQLite connection (constructed by SqliteRegistryStore; the table of
 * migration 14). Times are ISO text, so they compare as strings.
 */
export class SqliteDashboardSessionStore implements DashboardSessionStore {
  readonly #db: Database.Database
  readonly #gate: TransactionGate
  #prepared: ReturnType<typeof prepare> | undefined

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#db = db
    this.#gate = gate
  }

  /** Prepared on first use: a read-only registry of an older schema (no migration 14 yet) still opens. */
  get #s(): ReturnType<typeof prepare> {
    this.#prepared ??= prepare(this.#db)
    return this.#prepared
  }

  create(r: DashboardSessionRecord, bounds: SessionBounds): Promise<void> {
    return this.#gate.run(() => {
      const { idleBefore, createdBefore } = expiryCutoffs(bounds, r.createdAt)
      write(() =>
        this.#db.transaction(() => {
          this.#s.sweep.run(idleBefore.toISOString(), createdBefore.toISOString())
          this.#s.insert.run(r.idHash, r.keyId, r.keyName, r.createdAt.toISOString(), r.lastSeenAt.toISOString())
          this.#s.trim.run(bounds.maxSessions)
        })(),
      )
    })
  }

  get(idHash: string): Promise<DashboardSessionRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.get.get(idHash) as Row | undefined
      return r && toDashboardSession(r)
    })
  }

  touch(idHash: string, at: Date): Promise<void> {
    return this.#gate.run(() => {
      write(() => this.#s.touch.run(at.toISOString(), idHash))
    })
  }

  remove(idHash: string): Promise<void> {
    return this.#gate.run(() => {
      write(() => this.#s.remove.run(idHash))
    })
  }

  removeForKey(keyId: string): Promise<number> {
    return this.#gate.run(() => write(() => this.#s.removeForKey.run(keyId).changes))
  }

  count(): Promise<number> {
    return this.#gate.run(() => Number((this.#s.count.get() as Row).n))
  }
}
