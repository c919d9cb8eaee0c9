import { type DashboardSessionRecord, type DashboardSessionStore, expiryCutoffs, type SessionBounds } from '../dashboard-session-store.ts'
import { toDashboardSession } from '../record-rows.ts'
import type { PgDatabase } from './pg-database.ts'

/**
 * DashboardSessionStore on the registry's PostgreSQL database (constructed by PgRegistryStore; migration 14).
 * Its writes take no writer lock, as the AI usage ledger's: a sign-in or a session's use must neither wait for
 * nor hold up registry changes. Two sign-ins at once may each trim before the other inserts: the bound holds
 * again at the next sign-in.
 */
export class PgDashboardSessionStore implements DashboardSessionStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  async create(r: DashboardSessionRecord, bounds: SessionBounds): Promise<void> {
    const { idleBefore, createdBefore } = expiryCutoffs(bounds, r.createdAt)
    await this.#db.transactionWithoutWriterLock(async () => {
      await this.#db.execute('DELETE FROM dashboard_sessions WHERE last_seen_at <= $1 OR created_at <= $2', [idleBefore, createdBefore])
      await this.#db.execute('DELETE FROM dashboard_sessions WHERE id_hash = $1', [r.idHash])
      await this.#db.execute(
        'INSERT INTO dashboard_sessions (id_hash, key_id, key_name, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)',
        [r.idHash, r.keyId, r.keyName, r.createdAt, r.lastSeenAt],
      )
      await this.#db.execute(
        'DELETE FROM dashboard_sessions WHERE seq NOT IN (SELECT seq FROM dashboard_sessions ORDER BY seq DESC LIMIT $1)',
        [bounds.maxSessions],
      )
    })
  }

  async get(idHash: string): Promise<DashboardSessionRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM dashboard_sessions WHERE id_hash = $1', [idHash])
    return r && toDashboardSession(r)
  }

  async touch(idHash: string, at: Date): Promise<void> {
    await this.#db.execute('UPDATE dashboard_sessions SET last_seen_at = $1 WHERE id_hash = $2', [at, idHash])
  }

  async remove(idHash: string): Promise<void> {
    await this.#db.execute('DELETE FROM dashboard_sessions WHERE id_hash = $1', [idHash])
  }

  removeForKey(keyId: string): Promise<number> {
    return this.#db.execute('DELETE FROM dashboard_sessions WHERE key_id = $1', [keyId])
  }

  async count(): Promise<number> {
    const [r] = await this.#db.query('SELECT COUNT(*) AS n FROM dashboard_sessions')
    return Number(r?.n ?? 0)
  }
}
