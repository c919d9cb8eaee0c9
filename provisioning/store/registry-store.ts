import type { CrlReason } from '../../certs/index.ts'

/**
 * The registry: devices, their certificates, the audit log, the change feed and a little metadata.
 * Three implementations share one contract suite (test/contract/registry-store.contract.ts):
 * SqliteRegistryStore (production), PgRegistryStore (cluster mode) and InMemoryRegistryStore (unit tests).
 *
 * `transaction(fn)` runs an async fn atomically on the database's TransactionGate: every change and its audit entry
 * and event commit together or not at all (docs/architecture.md, "The store seam"). The audit, meta, appendEvent,
 * pruneEvents, probeWrite, certificate, device, label, last-seen and change-feed methods answer with Promises through
 * that gate (better-sqlite3 stays synchronous underneath), as the other stores do; only close, auditWriteFailures and
 * the listener registrations are synchronous.
 */
export type DeviceStatus = 'active' | 'disabled' | 'revoked'
export type CertificateStatus = 'active' | 'superseded' | 'revoked'

export interface DeviceRecord {
  id: string
  group: string | null
  tier: string
  status: DeviceStatus
  createdAt: Date
  updatedAt: Date
}

export interface LastSeen {
  deviceId: string
  at: Date
}

export interface CertificateRecord {
  serial: string
  deviceId: string
  fingerprint: string
  notBefore: Date
  notAfter: Date
  status: CertificateStatus
  /** For 'superseded': the moment from which the certificate is refused (end of the overlap). */
  supersededAt: Date | null
  revokedAt: Date | null
  revocationReason: CrlReason | null
  pem: string
  createdAt: Date
  /** SHA-256 (hex) of its public key (SPKI DER); absent on records made without one */
  keySha256?: string
}

/**
 * A certificate with its device, as a CONNECT judges them (the registry directory, provisioning/registry-directory.ts):
 * one read instead of two, and only these fields (not the PEM nor the other dates), issue 14.
 */
export interface CredentialRecord {
  serial: string
  deviceId: string
  status: CertificateStatus
  notBefore: Date
  notAfter: Date
  supersededAt: Date | null
  device: Pick<DeviceRecord, 'status' | 'tier' | 'group'>
}

export interface AuditEntry {
  id: number
  at: Date
  actor: string
  action: string
  subject: string
  details: Record<string, unknown>
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>

export interface StoredEvent {
  seq: number
  at: Date
  type: string
  data: Record<string, unknown>
}

/** Labels of a device: key -> value (rules and bounds in provisioning/authority/labels.ts). */
export type Labels = Record<string, string>

/** Every criterion given must hold (AND). */
export interface DeviceFilter {
  group?: string
  status?: DeviceStatus
  tier?: string
  /** devices that carry every one of these labels with these values */
  labels?: Labels
  /** devices with an active certificate whose notAfter is before this */
  certificateExpiresBefore?: Date
  /** keyset pagination: ids greater than this */
  after?: string
  limit?: number
}

export interface AuditFilter {
  subject?: string
  action?: string
  /** newest first; entries with id below this */
  before?: number
  limit?: number
}

export interface DeviceFieldsUpdate {
  group?: string | null
  tier?: string
}

export interface CertificateUpdate {
  status: CertificateStatus
  supersededAt?: Date | null
  revokedAt?: Date | null
  revocationReason?: CrlReason | null
}

export interface RegistryStore {
  /**
   * Runs fn atomically: every change and its audit entry and event commit together or not at all. Store
   * calls inside fn (any store of this database) join the transaction; calls from other async flows wait
   * until it ends (TransactionGate, provisioning/store/transaction-gate.ts).
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>

  insertDevice(device: DeviceRecord): Promise<void>
  getDevice(id: string): Promise<DeviceRecord | undefined>
  listDevices(filter?: DeviceFilter): Promise<DeviceRecord[]>
  countDevices(filter?: Omit<DeviceFilter, 'after' | 'limit'>): Promise<number>
  updateDeviceStatus(id: string, status: DeviceStatus, at: Date): Promise<void>
  /** Sets the fields given (the others stay) and updatedAt. */
  updateDeviceFields(id: string, fields: DeviceFieldsUpdate, at: Date): Promise<void>
  /** the device's labels ({} when none) */
  labels(id: string): Promise<Labels>
  /** Replaces every label of the device with these. */
  setLabels(id: string, labels: Labels): Promise<void>
  /** Records when devices were last seen, in one write; keeps the later time; unknown ids are ignored. */
  recordLastSeen(seen: readonly LastSeen[]): Promise<void>
  /** when the broker last saw the device (null: never, or unknown) */
  lastSeen(id: string): Promise<Date | null>
  /** every device that was ever seen, with when */
  listLastSeen(): Promise<LastSeen[]>

  insertCertificate(cert: CertificateRecord): Promise<void>
  getCertificate(serial: string): Promise<CertificateRecord | undefined>
  /** The certificate with this fingerprint and its device, read together (one statement); undefined when there is none. */
  getCredential(fingerprint: string): Promise<CredentialRecord | undefined>
  listCertificates(deviceId: string): Promise<CertificateRecord[]>
  listRevokedCertificates(): Promise<CertificateRecord[]>
  /** certificates (of any device and status) whose public key has this SHA-256 */
  certificatesWithKey(keySha256: string): Promise<CertificateRecord[]>
  /** Active certificates of active devices with `from` <= notAfter < `to`: the ones about to expire (metrics). */
  countCertificatesExpiring(from: Date, to: Date): Promise<number>
  updateCertificate(serial: string, update: CertificateUpdate): Promise<void>

  appendAudit(entry: NewAuditEntry): Promise<number>
  /** How many appendAudit calls failed since this store opened (a full disk, a lock): each was also thrown to its caller. */
  auditWriteFailures(): number
  listAudit(filter?: AuditFilter): Promise<AuditEntry[]>

  appendEvent(type: string, data: Record<string, unknown>, at: Date): Promise<number>
  /**
   * Called after a commit (of a transaction, or a lone write) that appended events, in this process:
   * the change feed polls at once instead of waiting for its interval. Other processes' commits are
   * still found by polling.
   */
  onEventsCommitted(listener: () => void): () => void
  /**
   * Called when another node may have committed events, so the change feed reads at once instead of at its
   * next poll: on PostgreSQL at every notification of its LISTEN (any node's commit that appended events)
   * and after every (re)connect of that connection (what was notified while it was away is lost: read by
   * id). SQLite and the in-memory store have no such signal and never call it (another process's commits
   * move dataVersion and are found by polling). The first listener starts the watch, the last one's
   * unsubscribe stops it.
   */
  onRemoteEvents(listener: () => void): () => void
  eventsAfter(seq: number, limit: number): Promise<StoredEvent[]>
  lastEventSeq(): Promise<number>
  /**
   * A number that changes when another connection (another process: the operator's CLI; another node) has
   * committed to the store since the last call, at once (never when a notification arrives: a CONNECT's
   * catch-up must see a revocation committed a moment before it); cheap enough to ask on every CONNECT, never
   * more than one cheap read (SQLite's PRAGMA data_version; on PostgreSQL the last event id, one index read).
   * This connection's own commits need not change it: onEventsCommitted reports those.
   */
  dataVersion(): Promise<number>
  pruneEvents(before: Date): Promise<number>

  getMeta(key: string): Promise<string | undefined>
  setMeta(key: string, value: string): Promise<void>
  /**
   * Readiness (GET /readyz): a real write (the `health.probedAt` meta row, committed) that waits at most
   * busyTimeoutMs for another writer's lock; GH_STORE_LOCKED past it, GH_STORE_DISK_FULL or GH_STORE_WRITE_FAILED when the registry cannot be written.
   */
  probeWrite(at: Date, busyTimeoutMs: number): Promise<void>

  close(): void
}
