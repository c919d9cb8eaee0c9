import type { PeerIdentity } from '../certs/index.ts'
import type { ControlEvent } from '../provisioning/index.ts'

/**
 * The one question the data plane asks the control plane (docs/architecture.md, docs/conventions.md §3).
 * The broker owns this interface; provisioning's facade matches it structurally, and cluster mode
 * later swaps the implementation, not the broker.
 */
export type RefusalReason = 'unknown-device' | 'unknown-certificate' | 'revoked' | 'superseded' | 'disabled' | 'expired' | 'not-yet-valid'

export type DeviceLookup =
  /**
   * validUntil: when the session on this certificate must end: its notAfter, or the end of its renewal
   * overlap (supersededAt) when that is earlier. The broker closes the session then (limits.sessionSweepMs).
   */
  | { kind: 'active'; deviceId: string; tier: string; group: string | null; serial: string; validUntil: Date }
  | { kind: 'refused'; reason: RefusalReason; deviceId: string | null; serial: string }

/**
 * The answer for a claim certificate (CN `claim:<claimId>`, docs/device-lifecycle.md). A claim that can
 * provision nothing now (revoked, past its expiry or used up) is refused at CONNECT, like an unknown one.
 */
export type ClaimRefusalReason = 'unknown-claim' | 'claim-revoked' | 'claim-expired' | 'claim-used-up'

export type ClaimLookup =
  | { kind: 'claim'; claimId: string; serial: string }
  | { kind: 'refused'; reason: ClaimRefusalReason; claimId: string | null; serial: string }

/**
 * The answer for an app certificate (CN `app:<name>`, docs/device-protocol.md "Apps"): what the app may
 * read. `groups` null: every group (and devices without one); else only devices of these groups.
 */
export type AppRefusalReason = 'unknown-app' | 'app-revoked'

/** What an app may subscribe to (topics.ts appGrants): devices' telemetry, reported settings, insights. */
export const APP_TOPIC_CLASSES = ['telemetry', 'reported', 'insights'] as const
export type AppTopicClass = (typeof APP_TOPIC_CLASSES)[number]

export type AppLookup =
  | { kind: 'app'; name: string; serial: string; groups: string[] | null; classes: AppTopicClass[] }
  | { kind: 'refused'; reason: AppRefusalReason; name: string | null; serial: string }

/**
 * Events the control plane publishes: its change feed's union (provisioning/events.ts), the one source
 * (docs/conventions.md §6), read here as a type only (§2).
 */
export type { ControlEvent }

/**
 * A device known by its id alone, with no certificate presented: what the broker asks before it acts for a
 * device that is not connected (a dead node's will, cluster.ts). Deleted devices are unknown.
 */
export type DeviceByIdLookup =
  | { kind: 'active'; deviceId: string }
  | { kind: 'refused'; reason: 'unknown-device' | 'revoked' | 'disabled'; deviceId: string }

export interface AuditRecord {
  actor: string
  action: string
  subject: string
  details?: Record<string, unknown>
}

export interface DeviceDirectory {
  /** Is this certificate a live device, and which? Must not block the event loop noticeably. */
  lookup(identity: PeerIdentity): Promise<DeviceLookup>
  /** Is this device id a live device (neither revoked, disabled nor deleted)? No certificate is judged. */
  lookupDeviceById(deviceId: string): Promise<DeviceByIdLookup>
  /** Is this certificate (by fingerprint and serial) the certificate of claim `claimId`? */
  lookupClaim(identity: PeerIdentity, claimId: string): Promise<ClaimLookup>
  /** Is this certificate (by fingerprint and serial) the live certificate of app `name`? Absent: every app is refused. */
  lookupApp?(identity: PeerIdentity, name: string): Promise<AppLookup>
  /** Subscribe to control-plane events (from this process or another one); returns unsubscribe. */
  onEvent(listener: (event: ControlEvent) => void): () => void
  /** Append to the audit log (fire and forget: failures are logged by the implementation). */
  audit(record: AuditRecord): void
}
