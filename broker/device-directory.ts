import type { PeerIdentity } from '../certs/index.ts'

/**
 * The one question the data plane asks the control plane (ARCHITECTURE.md, CONVENTIONS.md §3).
 * The broker owns this interface; provisioning's facade matches it structurally, and cluster mode
 * later swaps the implementation, not the broker.
 */
export type RefusalReason =
  | 'unknown-device'
  | 'unknown-certificate'
  | 'revoked'
  | 'superseded'
  | 'disabled'
  | 'expired'
  | 'not-yet-valid'

export type DeviceLookup =
  | { kind: 'active'; deviceId: string; tier: string; group: string | null; serial: string }
  | { kind: 'refused'; reason: RefusalReason; deviceId: string | null; serial: string }

/** Events the control plane publishes; `noun.pastVerb` (CONVENTIONS.md §19). */
export type ControlEvent =
  | { type: 'device.created'; deviceId: string }
  | { type: 'device.revoked'; deviceId: string }
  | { type: 'device.disabled'; deviceId: string }
  | { type: 'device.enabled'; deviceId: string }
  | { type: 'certificate.issued'; deviceId: string; serial: string }
  | { type: 'certificate.revoked'; deviceId: string; serial: string }
  | { type: 'certificate.superseded'; deviceId: string; serial: string }
  | { type: 'settings.changed'; deviceId: string; version: number }

export interface AuditRecord {
  actor: string
  action: string
  subject: string
  details?: Record<string, unknown>
}

export interface DeviceDirectory {
  /** Is this certificate a live device, and which? Must not block the event loop noticeably. */
  lookup(identity: PeerIdentity): Promise<DeviceLookup>
  /** Subscribe to control-plane events (from this process or another one); returns unsubscribe. */
  onEvent(listener: (event: ControlEvent) => void): () => void
  /** Append to the audit log (fire and forget: failures are logged by the implementation). */
  audit(record: AuditRecord): void
}
