/**
 * Per-tier and per-device limits (migration 9): each row is a JSON document the limits service
 * validated before writing it (provisioning/limits/). On the registry's connection, so a change, its
 * audit entry and its event commit together.
 */
export interface LimitsRecord {
  /** the tier name, or the device id */
  key: string
  limits: Record<string, unknown>
  updatedAt: Date
  updatedBy: string
}

export interface LimitsStore {
  getTier(tier: string): Promise<LimitsRecord | undefined>
  listTiers(): Promise<LimitsRecord[]>
  putTier(record: LimitsRecord): Promise<void>
  getDevice(deviceId: string): Promise<LimitsRecord | undefined>
  putDevice(record: LimitsRecord): Promise<void>
  /** true when there was a row */
  deleteDevice(deviceId: string): Promise<boolean>
}
