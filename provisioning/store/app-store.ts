/**
 * Apps (migration 13): MQTT identities that read devices' data within their scope (docs/device-protocol.md
 * "Apps"), and the certificates issued to each. On the registry's connection, so an app, its audit entry
 * and its app.revoked event commit together.
 *
 * Asynchronous from the start (every registry store becomes so, issue 13). The SQLite implementation runs
 * each statement at the call (better-sqlite3 is synchronous) and returns a settled Promise, so a write
 * made inside today's synchronous `transaction` is part of it and a failed statement throws at the call.
 */
export type AppStatus = 'active' | 'revoked'

export interface AppRecord {
  name: string
  /** null: every group (and devices without one) */
  groups: string[] | null
  /** topic classes (broker APP_TOPIC_CLASSES): telemetry, reported, insights */
  classes: string[]
  status: AppStatus
  createdAt: Date
  createdBy: string
  revokedAt: Date | null
}

export interface AppCertificateRecord {
  serial: string
  appName: string
  fingerprint: string
  /** SHA-256 of the public key (SPKI DER): one key pair, one identity */
  keySha256: string
  notAfter: Date
  status: AppStatus
  pem: string
  createdAt: Date
  revokedAt: Date | null
}

export interface AppStore {
  list(): Promise<AppRecord[]>
  get(name: string): Promise<AppRecord | undefined>
  /** apps not revoked (what apps.maxApps bounds) */
  countActive(): Promise<number>
  insert(app: AppRecord): Promise<void>
  /** the app and every certificate of it still active */
  revoke(name: string, at: Date): Promise<void>
  certificates(name: string): Promise<AppCertificateRecord[]>
  certificateByFingerprint(fingerprint: string): Promise<AppCertificateRecord | undefined>
  insertCertificate(cert: AppCertificateRecord): Promise<void>
  /** true when the certificate was active */
  revokeCertificate(serial: string, at: Date): Promise<boolean>
  /** every revoked app certificate (the CRLs) */
  revokedCertificates(): Promise<AppCertificateRecord[]>
  certificatesWithKey(keySha256: string): Promise<AppCertificateRecord[]>
}
