import type { LimitsRecord, LimitsStore } from '../limits-store.ts'
import type { PgDatabase } from './pg-database.ts'
import { toLimits } from '../record-rows.ts'

/** LimitsStore on the registry's PostgreSQL database (constructed by PgRegistryStore). */
export class PgLimitsStore implements LimitsStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  #write(sql: string, params: readonly unknown[]): Promise<number> {
    return this.#db.transaction(() => this.#db.execute(sql, params))
  }

  async getTier(tier: string): Promise<LimitsRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM tier_limits WHERE tier = $1', [tier])
    return r && toLimits(tier, r)
  }

  async listTiers(): Promise<LimitsRecord[]> {
    return (await this.#db.query('SELECT * FROM tier_limits ORDER BY tier')).map((r) => toLimits(String(r.tier), r))
  }

  async putTier(r: LimitsRecord): Promise<void> {
    await this.#write(
      `INSERT INTO tier_limits (tier, limits, updated_at, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tier) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [r.key, JSON.stringify(r.limits), r.updatedAt, r.updatedBy],
    )
  }

  async getDevice(deviceId: string): Promise<LimitsRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM device_limits WHERE device_id = $1', [deviceId])
    return r && toLimits(deviceId, r)
  }

  async putDevice(r: LimitsRecord): Promise<void> {
    await this.#write(
      `INSERT INTO device_limits (device_id, limits, updated_at, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (device_id) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [r.key, JSON.stringify(r.limits), r.updatedAt, r.updatedBy],
    )
  }

  async deleteDevice(deviceId: string): Promise<boolean> {
    return (await this.#write('DELETE FROM device_limits WHERE device_id = $1', [deviceId])) > 0
  }
}
