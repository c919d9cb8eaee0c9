import type Database from 'better-sqlite3'
import type { TransactionGate } from './transaction-gate.ts'
import type { RouteRecord, RouteStore } from './route-store.ts'
import { toRoute, type Row } from './record-rows.ts'

/** RouteStore on the registry's SQLite connection (constructed by SqliteRegistryStore). */
export class SqliteRouteStore implements RouteStore {
  readonly #s

  readonly #gate: TransactionGate

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#gate = gate
    this.#s = {
      list: db.prepare('SELECT * FROM telemetry_routes ORDER BY created_at, id'),
      get: db.prepare('SELECT * FROM telemetry_routes WHERE id = ?'),
      count: db.prepare('SELECT count(*) AS n FROM telemetry_routes'),
      insert: db.prepare(
        `INSERT INTO telemetry_routes (id, url, grp, secret, batch_size, batch_ms, queue_max, redact, consent, created_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      delete: db.prepare('DELETE FROM telemetry_routes WHERE id = ?'),
    }
  }

  list(): Promise<RouteRecord[]> {
    return this.#gate.run(() => {
      return (this.#s.list.all() as Row[]).map(toRoute)
    })
  }

  get(id: string): Promise<RouteRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.get.get(id) as Row | undefined
      return r && toRoute(r)
    })
  }

  count(): Promise<number> {
    return this.#gate.run(() => {
      return Number((this.#s.count.get() as Row).n)
    })
  }

  insert(r: RouteRecord): Promise<void> {
    return this.#gate.run(() => {
      this.#s.insert.run(
        r.id,
        r.url,
        r.group,
        r.secret,
        r.batchSize,
        r.batchMs,
        r.queueMax,
        r.redact ? 1 : 0,
        r.consent ? 1 : 0,
        r.createdAt.toISOString(),
        r.createdBy,
      )
    })
  }

  delete(id: string): Promise<boolean> {
    return this.#gate.run(() => {
      return this.#s.delete.run(id).changes > 0
    })
  }
}
