import type { RouteRecord, RouteStore } from '../route-store.ts'
import type { PgDatabase, Row } from './pg-database.ts'
import { date, num } from './pg-rows.ts'

const toRecord = (r: Row): RouteRecord => ({
  id: String(r.id),
  url: String(r.url),
  group: r.grp == null ? null : String(r.grp),
  secret: String(r.secret),
  batchSize: num(r.batch_size),
  batchMs: num(r.batch_ms),
  queueMax: num(r.queue_max),
  redact: r.redact === true,
  consent: r.consent === true,
  createdAt: date(r.created_at),
  createdBy: String(r.created_by),
})

/** RouteStore on the registry's PostgreSQL database (constructed by PgRegistryStore). */
export class PgRouteStore implements RouteStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  async list(): Promise<RouteRecord[]> {
    return (await this.#db.query('SELECT * FROM telemetry_routes ORDER BY created_at, id')).map(toRecord)
  }

  async get(id: string): Promise<RouteRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM telemetry_routes WHERE id = $1', [id])
    return r && toRecord(r)
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
