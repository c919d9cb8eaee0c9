import type Database from 'better-sqlite3'
import type { TransactionGate } from './transaction-gate.ts'
import type { DeviceSettingsRecord, LayerScope, SettingsLayerRecord, SettingsSchemaRecord, SettingsStore } from './settings-store.ts'

type Row = Record<string, unknown>
const iso = (d: Date) => d.toISOString()
const json = (v: unknown) => JSON.parse(String(v)) as Record<string, unknown>

/** SettingsStore on the registry's SQLite connection (constructed by SqliteRegistryStore). */
export class SqliteSettingsStore implements SettingsStore {
  readonly #s

  readonly #gate: TransactionGate

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#gate = gate
    this.#s = {
      getLayer: db.prepare('SELECT * FROM settings_layers WHERE scope = ?'),
      layerScopes: db.prepare('SELECT scope FROM settings_layers ORDER BY scope').pluck(),
      putLayer: db.prepare(
        `INSERT INTO settings_layers (scope, document, revision, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (scope) DO UPDATE SET document = excluded.document, revision = excluded.revision,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ),
      getDevice: db.prepare('SELECT * FROM device_settings WHERE device_id = ?'),
      putDevice: db.prepare(
        `INSERT INTO device_settings (device_id, version, digest, updated_at, reported, reported_version, reported_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, digest = excluded.digest,
           updated_at = excluded.updated_at, reported = excluded.reported, reported_version = excluded.reported_version,
           reported_at = excluded.reported_at`,
      ),
      allIds: db.prepare('SELECT device_id FROM device_settings ORDER BY device_id'),
      groupIds: db.prepare(
        'SELECT s.device_id FROM device_settings s JOIN devices d ON d.id = s.device_id WHERE d.group_name = ? ORDER BY s.device_id',
      ),
      getSchema: db.prepare('SELECT * FROM settings_schemas WHERE group_name = ?'),
      putSchema: db.prepare(
        `INSERT INTO settings_schemas (group_name, schema, updated_at, updated_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (group_name) DO UPDATE SET schema = excluded.schema, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ),
      deleteSchema: db.prepare('DELETE FROM settings_schemas WHERE group_name = ?'),
      schemaGroups: db.prepare('SELECT group_name FROM settings_schemas ORDER BY group_name'),
      aSealedLayer: db.prepare(`SELECT * FROM settings_layers WHERE instr(document, '"$enc"') > 0 LIMIT 1`),
      syncCounts: db.prepare(
        `SELECT count(*) AS total, count(CASE WHEN s.reported_version = s.version THEN 1 END) AS inSync
         FROM devices d LEFT JOIN device_settings s ON s.device_id = d.id WHERE d.status = 'active'`,
      ),
      countSealed: db.prepare(
        `SELECT (SELECT count(*) FROM settings_layers WHERE instr(document, '"$enc"') > 0)
              + (SELECT count(*) FROM device_settings WHERE instr(reported, '"$enc"') > 0) AS n`,
      ),
    }
  }

  getLayer(scope: LayerScope): Promise<SettingsLayerRecord | undefined> {
    return this.#gate.run(() => this.#layer(scope))
  }

  #layer(scope: LayerScope): SettingsLayerRecord | undefined {
    const r = this.#s.getLayer.get(scope) as Row | undefined
    return (
      r && {
        scope,
        document: json(r.document),
        revision: Number(r.revision),
        updatedAt: new Date(String(r.updated_at)),
        updatedBy: String(r.updated_by),
      }
    )
  }

  listLayers(): Promise<SettingsLayerRecord[]> {
    return this.#gate.run(() => {
      return (this.#s.layerScopes.all() as LayerScope[]).flatMap((scope) => this.#layer(scope) ?? [])
    })
  }

  putLayer(l: SettingsLayerRecord): Promise<void> {
    return this.#gate.run(() => {
      this.#s.putLayer.run(l.scope, JSON.stringify(l.document), l.revision, iso(l.updatedAt), l.updatedBy)
    })
  }

  getDeviceSettings(deviceId: string): Promise<DeviceSettingsRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getDevice.get(deviceId) as Row | undefined
      if (!r) return undefined
      return {
        deviceId,
        version: Number(r.version),
        digest: String(r.digest),
        updatedAt: new Date(String(r.updated_at)),
        reported: r.reported == null ? null : json(r.reported),
        reportedVersion: r.reported_version == null ? null : Number(r.reported_version),
        reportedAt: r.reported_at == null ? null : new Date(String(r.reported_at)),
      }
    })
  }

  putDeviceSettings(d: DeviceSettingsRecord): Promise<void> {
    return this.#gate.run(() => {
      this.#s.putDevice.run(
        d.deviceId,
        d.version,
        d.digest,
        iso(d.updatedAt),
        d.reported === null ? null : JSON.stringify(d.reported),
        d.reportedVersion,
        d.reportedAt && iso(d.reportedAt),
      )
    })
  }

  deviceIdsWithSettings(group?: string): Promise<string[]> {
    return this.#gate.run(() => {
      const rows = (group === undefined ? this.#s.allIds.all() : this.#s.groupIds.all(group)) as Row[]
      return rows.map((r) => String(r.device_id))
    })
  }

  getSchema(group: string): Promise<SettingsSchemaRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getSchema.get(group) as Row | undefined
      return r && { group, schema: json(r.schema), updatedAt: new Date(String(r.updated_at)), updatedBy: String(r.updated_by) }
    })
  }

  putSchema(s: SettingsSchemaRecord): Promise<void> {
    return this.#gate.run(() => {
      this.#s.putSchema.run(s.group, JSON.stringify(s.schema), iso(s.updatedAt), s.updatedBy)
    })
  }

  deleteSchema(group: string): Promise<void> {
    return this.#gate.run(() => {
      this.#s.deleteSchema.run(group)
    })
  }

  schemaGroups(): Promise<string[]> {
    return this.#gate.run(() => {
      return (this.#s.schemaGroups.all() as Row[]).map((r) => String(r.group_name))
    })
  }

  aSealedLayer(): Promise<SettingsLayerRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.aSealedLayer.get() as Row | undefined
      return r ? this.#layer(String(r.scope) as LayerScope) : undefined
    })
  }

  countSealed(): Promise<number> {
    return this.#gate.run(() => {
      return Number((this.#s.countSealed.get() as Row).n)
    })
  }

  syncCounts(): Promise<{ inSync: number; outOfSync: number }> {
    return this.#gate.run(() => {
      const row = this.#s.syncCounts.get() as Row
      const inSync = Number(row.inSync)
      return { inSync, outOfSync: Number(row.total) - inSync }
    })
  }
}
