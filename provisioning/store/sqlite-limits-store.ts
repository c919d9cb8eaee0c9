import type Database from 'better-sqlite3'
import type { TransactionGate } from './transaction-gate.ts'
import type { LimitsRecord, LimitsStore } from './limits-store.ts'
import { toLimits, type Row } from './record-rows.ts'

/** LimitsStore on the registry's SQLite connection (constructed by SqliteRegistryStore). */
export class SqliteLimitsStore implements LimitsStore {
  readonly #s

  readonly #gate: TransactionGate

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#gate = gate
    this.#s = {
      getTier: db.prepare('SELECT * FROM tier_limits WHERE tier = ?'),
      listTiers: db.prepare('SELECT * FROM tier_limits ORDER BY tier'),
      putTier: db.prepare(
        `INSERT INTO tier_limits (tier, limits, updated_at, updated_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (tier) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ),
      getDevice: db.prepare('SELECT * FROM device_limits WHERE device_id = ?'),
      putDevice: db.prepare(
        `INSERT INTO device_limits (device_id, limits, updated_at, updated_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ),
      deleteDevice: db.prepare('DELETE FROM device_limits WHERE device_id = ?'),
    }
  }

  getTier(tier: string): Promise<LimitsRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getTier.get(tier) as Row | undefined
      return r && toLimits(tier, r)
    })
  }

  listTiers(): Promise<LimitsRecord[]> {
    return this.#gate.run(() => {
      return (this.#s.listTiers.all() as Row[]).map((r) => toLimits(String(r.tier), r))
    })
  }

  putTier(r: LimitsRecord): Promise<void> {
    return this.#gate.run(() => {
      this.#s.putTier.run(r.key, JSON.stringify(r.limits), r.updatedAt.toISOString(), r.updatedBy)
    })
  }

  getDevice(deviceId: string): Promise<LimitsRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getDevice.get(deviceId) as Row | undefined
      return r && toLimits(deviceId, r)
    })
  }

  putDevice(r: LimitsRecord): Promise<void> {
    return this.#gate.run(() => {
      this.#s.putDevice.run(r.key, JSON.stringify(r.limits), r.updatedAt.toISOString(), r.updatedBy)
    })
  }

  deleteDevice(deviceId: string): Promise<boolean> {
    return this.#gate.run(() => {
      return this.#s.deleteDevice.run(deviceId).changes > 0
    })
  }
}
