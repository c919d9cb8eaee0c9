import type { RouteRecord, RouteStore } from '../route-store.ts'
import type { PgDatabase } from './pg-database.ts'
import { num } from './pg-rows.ts'
import { toRoute } from '../record-rows.ts'

/** RouteStore on the registry's PostgreSQL database (constructed by PgRegistryStore). */
export class PgRouteStore implements RouteStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  async list(): Promise<RouteRecord[]> {
    return (await this.#db.query('SELECT * FROM telemetry_routes ORDER BY created_at, id')).map(toRoute)
  }

  async get(id: string): Promise<RouteRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM telemetry_routes WHERE id = $1', [id])
    return r && toRoute(r)
  }

  async count(): Promise<number> {
    const [r] = await this.#db.query('SELECT count(*) AS n FROM telemetry_routes')
    return num(r?.n)
  }

  async insert(r: RouteRecord): Promise<void> {
    await this.#db.transaction(() =>
      this.#db.execute(
        `INSERT INTO telemetry_routes (id, url, grp, secret, batch_size, batch_ms, queue_max, redact, consent, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [r.id, r.url, r.group, r.secret, r.batchSize, r.batchMs, r.queueMax, r.redact, r.consent, r.createdAt, r.createdBy],
      ),
    )
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#db.transaction(() => this.#db.execute('DELETE FROM telemetry_routes WHERE id = $1', [id]))) > 0
  }
}
