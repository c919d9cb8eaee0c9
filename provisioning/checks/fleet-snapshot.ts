import type { ApiKeyRecord } from '../store/api-key-store.ts'
import type { ClaimRecord } from '../store/claim-store.ts'
import type { DeviceStatus } from '../store/registry-store.ts'
import type { LayerScope } from '../store/settings-store.ts'

/**
 * Everything the fleet checks look at, read once from a data directory's stores and files
 * (read-fleet-snapshot.ts); the checks are pure functions of it and of the options.
 */
export interface FleetSnapshot {
  now: Date
  devices: SnapshotDevice[]
  /** the root and the issuing CAs in use (current and previous ones not yet expired) */
  caCertificates: { role: 'root' | 'issuing'; serial: string; subject: string; notAfter: Date }[]
  /** the CA's and the server's private key files */
  keyFiles: { path: string; encrypted: boolean }[]
  /** files and folders that must be private to Gatehouse's user, with their mode bits */
  privatePaths: { path: string; mode: number }[]
  /** the stored CRL of each issuing CA in use (none until the first is issued) */
  crls: { issuerSerial: string; nextUpdate: Date }[]
  /** audit rows of refusals and limit hits, newest first, within the look-back window */
  limitHits: { deviceId: string; action: string; at: Date }[]
  claims: ClaimRecord[]
  apiKeys: ApiKeyRecord[]
  settingsLayers: { scope: LayerScope; document: Record<string, unknown> }[]
}

export interface SnapshotDevice {
  id: string
  status: DeviceStatus
  createdAt: Date
  lastSeen: Date | null
  /** the newest active certificate (null: none) */
  certificate: { serial: string; notAfter: Date; spkiSha256: string } | null
}
