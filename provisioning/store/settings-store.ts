/**
 * Settings persistence: layers (fleet < group < device), each device's effective-settings version and
 * last report, and optional JSON Schemas per group. Implemented by SqliteSettingsStore on the same
 * SQLite connection as the registry, so a settings change, its audit entry and its event share one
 * transaction (RegistryStore.transaction).
 */
export type LayerScope = 'fleet' | `group:${string}` | `device:${string}`

export interface SettingsLayerRecord {
  scope: LayerScope
  /** the layer's JSON object; secret values are stored encrypted ({"$enc": "..."}) */
  document: Record<string, unknown>
  revision: number
  updatedAt: Date
  updatedBy: string
}

export interface DeviceSettingsRecord {
  deviceId: string
  version: number
  /** SHA-256 of the canonical effective document: a change bumps the version only if this changes */
  digest: string
  updatedAt: Date
  reported: Record<string, unknown> | null
  reportedVersion: number | null
  reportedAt: Date | null
}

export interface SettingsSchemaRecord {
  group: string
  schema: Record<string, unknown>
  updatedAt: Date
  updatedBy: string
}

export interface SettingsStore {
  getLayer(scope: LayerScope): Promise<SettingsLayerRecord | undefined>
  /** every layer, by scope */
  listLayers(): Promise<SettingsLayerRecord[]>
  putLayer(layer: SettingsLayerRecord): Promise<void>
  getDeviceSettings(deviceId: string): Promise<DeviceSettingsRecord | undefined>
  putDeviceSettings(record: DeviceSettingsRecord): Promise<void>
  /** device ids that have a settings row, optionally only those of one group */
  deviceIdsWithSettings(group?: string): Promise<string[]>
  getSchema(group: string): Promise<SettingsSchemaRecord | undefined>
  putSchema(record: SettingsSchemaRecord): Promise<void>
  deleteSchema(group: string): Promise<void>
  /** groups that have a schema */
  schemaGroups(): Promise<string[]>
  /** layers and device reports that hold at least one sealed secret ({"$enc": ...}) */
  countSealed(): Promise<number>
  /** active devices whose last report names their current settings version, and the other active devices */
  syncCounts(): Promise<{ inSync: number; outOfSync: number }>
  /** one layer (fleet, group or device overrides: sealed by Gatehouse, never by a device) holding a sealed secret */
  aSealedLayer(): Promise<SettingsLayerRecord | undefined>
}
