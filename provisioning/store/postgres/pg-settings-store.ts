import type { DeviceSettingsRecord, LayerScope, SettingsLayerRecord, SettingsSchemaRecord, SettingsStore } from '../settings-store.ts'
import type { PgDatabase, Row } from './pg-database.ts'
import { date, dateOrNull, json, num, numOrNull } from './pg-rows.ts'

const toLayer = (r: Row): SettingsLayerRecord => ({
  scope: String(r.scope) as LayerScope,
  document: json(r.document),
  revision: num(r.revision),
  updatedAt: date(r.updated_at),
  updatedBy: String(r.updated_by),
})

/** SettingsStore on the registry's PostgreSQL database (constructed by PgRegistryStore). */
export class PgSettingsStore implements SettingsStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  #write(sql: string, params: readonly unknown[]): Promise<number> {
    return this.#db.transaction(() => this.#db.execute(sql, params))
  }

  async getLayer(scope: LayerScope): Promise<SettingsLayerRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM settings_layers WHERE scope = $1', [scope])
    return r && toLayer(r)
  }

  async listLayers(): Promise<SettingsLayerRecord[]> {
    return (await this.#db.query('SELECT * FROM settings_layers ORDER BY scope')).map(toLayer)
  }

  async putLayer(l: SettingsLayerRecord): Promise<void> {
    await this.#write(
      `INSERT INTO settings_layers (scope, document, revision, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (scope) DO UPDATE SET document = excluded.document, revision = excluded.revision,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [l.scope, JSON.stringify(l.document), l.revision, l.updatedAt, l.updatedBy],
    )
  }

  async getDeviceSettings(deviceId: string): Promise<DeviceSettingsRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM device_settings WHERE device_id = $1', [deviceId])
    if (!r) return undefined
    return {
      deviceId,
      version: num(r.version),
      digest: String(r.digest),
      updatedAt: date(r.updated_at),
      reported: r.reported == null ? null : json(r.reported),
      reportedVersion: numOrNull(r.reported_version),
      reportedAt: dateOrNull(r.reported_at),
    }
  }

  async putDeviceSettings(d: DeviceSettingsRecord): Promise<void> {
    await this.#write(
      `INSERT INTO device_settings (device_id, version, digest, updated_at, reported, reported_version, reported_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, digest = excluded.digest,
         updated_at = excluded.updated_at, reported = excluded.reported, reported_version = excluded.reported_version,
         reported_at = excluded.reported_at`,
      [
        d.deviceId,
        d.version,
        d.digest,
        d.updatedAt,
        d.reported === null ? null : JSON.stringify(d.reported),
        d.reportedVersion,
        d.reportedAt,
      ],
    )
  }

  async deviceIdsWithSettings(group?: string): Promise<string[]> {
    const rows =
      group === undefined
        ? await this.#db.query('SELECT device_id FROM device_settings ORDER BY device_id')
        : await this.#db.query(
            'SELECT s.device_id FROM device_settings s JOIN devices d ON d.id = s.device_id WHERE d.group_name = $1 ORDER BY s.device_id',
            [group],
          )
    return rows.map((r) => String(r.device_id))
  }

  async getSchema(group: string): Promise<SettingsSchemaRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM settings_schemas WHERE group_name = $1', [group])
    return r && { group, schema: json(r.schema), updatedAt: date(r.updated_at), updatedBy: String(r.updated_by) }
  }

  async putSchema(s: SettingsSchemaRecord): Promise<void> {
    await this.#write(
      `INSERT INTO settings_schemas (group_name, schema, updated_at, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (group_name) DO UPDATE SET schema = excluded.schema, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [s.group, JSON.stringify(s.schema), s.updatedAt, s.updatedBy],
    )
  }

  async deleteSchema(group: string): Promise<void> {
    await this.#write('DELETE FROM settings_schemas WHERE group_name = $1', [group])
  }

  async schemaGroups(): Promise<string[]> {
    return (await this.#db.query('SELECT group_name FROM settings_schemas ORDER BY group_name')).map((r) => String(r.group_name))
  }

  async aSealedLayer(): Promise<SettingsLayerRecord | undefined> {
    const [r] = await this.#db.query(`SELECT * FROM settings_layers WHERE strpos(document, '"$enc"') > 0 ORDER BY scope LIMIT 1`)
    return r && toLayer(r)
  }

  async countSealed(): Promise<number> {
    const [r] = await this.#db.query(
      `SELECT (SELECT count(*) FROM settings_layers WHERE strpos(document, '"$enc"') > 0)
            + (SELECT count(*) FROM device_settings WHERE strpos(reported, '"$enc"') > 0) AS n`,
    )
    return num(r?.n)
  }

  async syncCounts(): Promise<{ inSync: number; outOfSync: number }> {
    const [r] = await this.#db.query(
      `SELECT count(*) AS total, count(CASE WHEN s.reported_version = s.version THEN 1 END) AS in_sync
       FROM devices d LEFT JOIN device_settings s ON s.device_id = d.id WHERE d.status = 'active'`,
    )
    const inSync = num(r?.in_sync)
    return { inSync, outOfSync: num(r?.total) - inSync }
  }
}
