import { closeSync, openSync } from 'node:fs'
import Database from 'better-sqlite3'
import { CertificateExists, DeviceExists, DeviceNotFound, StoreSchemaTooNew } from '../errors.ts'
import { CommitNotifier } from './commit-notifier.ts'
import { TransactionGate } from './transaction-gate.ts'
import { migrations, SCHEMA_VERSION } from './migrations/index.ts'
import {
  CREDENTIAL_COLUMNS,
  date,
  dateOrNull,
  deviceWhere,
  type Row,
  toAudit,
  toCertificate,
  toCredential,
  toDevice,
} from './record-rows.ts'
import { backfillKeySha256, iso, sqliteBinder } from './sqlite-device-queries.ts'
import { SqliteAiUsageStore } from './sqlite-ai-usage-store.ts'
import { SqliteApiKeyStore } from './sqlite-api-key-store.ts'
import { SqliteAppStore } from './sqlite-app-store.ts'
import { SqliteClaimStore } from './sqlite-claim-store.ts'
import { SqliteDashboardSessionStore } from './sqlite-dashboard-session-store.ts'
import { SqliteLimitsStore } from './sqlite-limits-store.ts'
import { SqliteRouteStore } from './sqlite-route-store.ts'
import { SqliteSettingsStore } from './sqlite-settings-store.ts'
import { storeFailure, storeWrite } from './store-failure.ts'
import type {
  AuditEntry,
  AuditFilter,
  CertificateRecord,
  CredentialRecord,
  CertificateUpdate,
  DeviceFieldsUpdate,
  DeviceFilter,
  DeviceRecord,
  DeviceStatus,
  Labels,
  LastSeen,
  NewAuditEntry,
  RegistryStore,
  StoredEvent,
} from './registry-store.ts'

function isConstraint(err: unknown): boolean {
  return typeof err === 'object' && err !== null && String((err as { code?: unknown }).code).startsWith('SQLITE_CONSTRAINT')
}

export interface SqliteRegistryStoreOptions {
  /** How long a writer waits for another process's write lock before failing (ms). */
  busyTimeoutMs?: number
  readonly?: boolean
}

/** Active certificates of active devices expiring in [from, to): a range over certificates_active_not_after (migration 7). */
export const COUNT_EXPIRING_SQL = `SELECT COUNT(*) AS n FROM certificates c JOIN devices d ON d.id = c.device_id
  WHERE c.status = 'active' AND d.status = 'active' AND c.not_after >= ? AND c.not_after < ?`

/**
 * Opens the file (created 0600: SQLite gives its -wal and -shm files the same mode) and reads its schema. A
 * full disk, a lock past the busy timeout or a file that is not a database stops the opening with its coded
 * error, and the file is left as it was: the evidence stays for the operator (docs/errors.md, GH_STORE_CORRUPT).
 */
function openDatabase(path: string, busyTimeoutMs: number, readonly: boolean): Database.Database {
  return storeWrite(() => {
    if (!readonly && path !== ':memory:') closeSync(openSync(path, 'a', 0o600))
    const db = new Database(path, { readonly })
    try {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`)
      if (!readonly) {
        db.pragma('journal_mode = WAL')
        db.pragma('synchronous = FULL')
      }
      db.pragma('foreign_keys = ON')
      db.prepare('SELECT count(*) FROM sqlite_master').get() // parses the schema: a damaged one fails here, not later
      return db
    } catch (err) {
      db.close()
      throw err
    }
  }, path)
}

/**
 * The registry in one SQLite file (WAL mode, foreign keys on, synchronous=FULL so a change the
 * operator is told about survives a power cut). Several processes may open the same file: the
 * broker and the CLI do.
 */
export class SqliteRegistryStore implements RegistryStore {
  readonly #db: Database.Database
  readonly #path: string
  readonly #busyTimeoutMs: number
  #auditWriteFailures = 0
  readonly #stmts
  /** settings layers, versions, reports and schemas, on this connection (same transactions) */
  readonly settings: SqliteSettingsStore
  /** apps' API keys (hashed), on this connection (same transactions) */
  readonly apiKeys: SqliteApiKeyStore
  /** the AI bridge's daily usage and last insights per device, on this connection */
  readonly aiUsage: SqliteAiUsageStore
  /** claims (zero-touch provisioning), their tokens and the devices they provisioned, on this connection */
  readonly claims: SqliteClaimStore
  /** per-tier and per-device limits, on this connection */
  readonly limits: SqliteLimitsStore
  /** telemetry routes, on this connection */
  readonly routes: SqliteRouteStore
  /** apps (MQTT identities) and their certificates, on this connection */
  readonly apps: SqliteAppStore
  /** the dashboard's signed-in sessions (hashed ids), on this connection */
  readonly dashboardSessions: SqliteDashboardSessionStore

  constructor(path: string, options: SqliteRegistryStoreOptions = {}) {
    this.#path = path
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000
    this.#db = openDatabase(path, this.#busyTimeoutMs, options.readonly ?? false)
    try {
      if (!options.readonly) this.#migrate(path)
    } catch (err) {
      this.#db.close()
      throw storeFailure(err, path) ?? err
    }
    const db = this.#db
    this.settings = new SqliteSettingsStore(db, this.#gate)
    this.aiUsage = new SqliteAiUsageStore(db, this.#gate)
    this.apiKeys = new SqliteApiKeyStore(db, this.#gate)
    this.claims = new SqliteClaimStore(db, this.#gate)
    this.limits = new SqliteLimitsStore(db, this.#gate)
    this.routes = new SqliteRouteStore(db, this.#gate)
    this.apps = new SqliteAppStore(db, this.#gate)
    this.dashboardSessions = new SqliteDashboardSessionStore(db, this.#gate)
    this.#stmts = {
      insertDevice: db.prepare('INSERT INTO devices (id, group_name, tier, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)'),
      getDevice: db.prepare('SELECT * FROM devices WHERE id = ?'),
      updateDeviceStatus: db.prepare('UPDATE devices SET status = ?, updated_at = ? WHERE id = ?'),
      updateDeviceGroup: db.prepare('UPDATE devices SET group_name = ?, updated_at = ? WHERE id = ?'),
      updateDeviceTier: db.prepare('UPDATE devices SET tier = ?, updated_at = ? WHERE id = ?'),
      labels: db.prepare('SELECT key, value FROM device_labels WHERE device_id = ? ORDER BY key'),
      clearLabels: db.prepare('DELETE FROM device_labels WHERE device_id = ?'),
      insertLabel: db.prepare('INSERT INTO device_labels (device_id, key, value) VALUES (?, ?, ?)'),
      // ISO-8601 UTC strings order as the times do
      recordLastSeen: db.prepare('UPDATE devices SET last_seen_at = @at WHERE id = @id AND (last_seen_at IS NULL OR last_seen_at < @at)'),
      lastSeen: db.prepare('SELECT last_seen_at FROM devices WHERE id = ?').pluck(),
      listLastSeen: db.prepare('SELECT id, last_seen_at FROM devices WHERE last_seen_at IS NOT NULL ORDER BY id'),
      insertCert: db.prepare(
        `INSERT INTO certificates (serial, device_id, fingerprint, not_before, not_after, status, superseded_at,
           revoked_at, revocation_reason, pem, created_at, key_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getCert: db.prepare('SELECT * FROM certificates WHERE serial = ?'),
      getCredential: db.prepare(`SELECT ${CREDENTIAL_COLUMNS} WHERE c.fingerprint = ?`),
      listCerts: db.prepare('SELECT * FROM certificates WHERE device_id = ? ORDER BY created_at, serial'),
      listRevoked: db.prepare("SELECT * FROM certificates WHERE status = 'revoked' ORDER BY revoked_at, serial"),
      certsWithKey: db.prepare('SELECT * FROM certificates WHERE key_sha256 = ? ORDER BY created_at, serial'),
      countExpiring: db.prepare(COUNT_EXPIRING_SQL),
      updateCert: db.prepare(
        'UPDATE certificates SET status = ?, superseded_at = ?, revoked_at = ?, revocation_reason = ? WHERE serial = ?',
      ),
      appendAudit: db.prepare('INSERT INTO audit_log (at, actor, action, subject, details) VALUES (?, ?, ?, ?, ?)'),
      appendEvent: db.prepare('INSERT INTO events (at, type, data) VALUES (?, ?, ?)'),
      eventsAfter: db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?'),
      lastSeq: db.prepare("SELECT COALESCE(MAX(seq), (SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) AS seq FROM events"),
      pruneEvents: db.prepare('DELETE FROM events WHERE at < ?'),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    }
  }

  #migrate(path: string): void {
    const current = Number(this.#db.pragma('user_version', { simple: true }))
    const latest = SCHEMA_VERSION
    if (current > latest) throw new StoreSchemaTooNew(path, current, latest)
    for (const m of migrations.filter((m) => m.version > current)) {
      this.#write(() =>
        this.#db
          .transaction(() => {
            this.#db.exec(m.sql)
            if (m.version === 8) backfillKeySha256(this.#db)
            this.#db.pragma(`user_version = ${m.version}`)
          })
          .immediate(),
      )
    }
  }

  /** Runs a write; turns disk-full and I/O failures into one coded error (nothing was changed). */
  #write<T>(fn: () => T): T {
    return storeWrite(fn, this.#path)
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.#gate.transaction(fn)
  }

  #rollback(): void {
    if (this.#db.inTransaction) this.#db.exec('ROLLBACK')
    this.#commits.rolledBack()
  }

  /** A synchronous write of several statements, atomic on its own or inside the open transaction (a savepoint). */
  #atomic(fn: () => void): void {
    this.#write(() => this.#db.transaction(fn).immediate())
  }

  readonly #commits = new CommitNotifier()
  /** the open transaction (IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read lock) */
  readonly #gate: TransactionGate = new TransactionGate({
    begin: () => this.#write(() => this.#db.exec('BEGIN IMMEDIATE')),
    commit: () => {
      try {
        this.#write(() => this.#db.exec('COMMIT'))
      } catch (err) {
        this.#rollback()
        throw err
      }
      this.#commits.committed()
    },
    rollback: () => this.#rollback(),
    // a read that meets a damaged page or a failing disk gets the store's code too, not an internal error
    failure: (err) => storeFailure(err, this.#path),
  })

  onEventsCommitted(listener: () => void): () => void {
    return this.#commits.subscribe(listener)
  }

  /** SQLite announces no other process's commit: PRAGMA data_version and the feed's poll find them */
  onRemoteEvents(_listener: () => void): () => void {
    return () => {}
  }

  insertDevice(d: DeviceRecord): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#write(() => this.#stmts.insertDevice.run(d.id, d.group, d.tier, d.status, iso(d.createdAt), iso(d.updatedAt)))
      } catch (err) {
        if (isConstraint(err)) throw new DeviceExists(d.id, d.id)
        throw err
      }
    })
  }

  getDevice(id: string): Promise<DeviceRecord | undefined> {
    return this.#gate.run(() => {
      const row = this.#stmts.getDevice.get(id) as Row | undefined
      return row && toDevice(row)
    })
  }

  listDevices(filter: DeviceFilter = {}): Promise<DeviceRecord[]> {
    return this.#gate.run(() => this.#listDevices(filter))
  }

  #listDevices(filter: DeviceFilter): DeviceRecord[] {
    const { params, bind } = sqliteBinder()
    const where = deviceWhere(filter, bind)
    if (filter.after !== undefined) {
      where.push('id > ?')
      params.push(filter.after)
    }
    const sql = `SELECT * FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`
    return (this.#db.prepare(sql).all(...params, filter.limit ?? -1) as Row[]).map(toDevice)
  }

  countDevices(filter: Omit<DeviceFilter, 'after' | 'limit'> = {}): Promise<number> {
    return this.#gate.run(() => {
      const { params, bind } = sqliteBinder()
      const where = deviceWhere(filter, bind)
      const sql = `SELECT COUNT(*) AS n FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`
      return Number((this.#db.prepare(sql).get(...params) as Row).n)
    })
  }

  updateDeviceStatus(id: string, status: DeviceStatus, at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#write(() => this.#stmts.updateDeviceStatus.run(status, iso(at), id))
    })
  }

  updateDeviceFields(id: string, fields: DeviceFieldsUpdate, at: Date): Promise<void> {
    return this.#gate.run(() =>
      this.#write(() => {
        if (fields.group !== undefined) this.#stmts.updateDeviceGroup.run(fields.group, iso(at), id)
        if (fields.tier !== undefined) this.#stmts.updateDeviceTier.run(fields.tier, iso(at), id)
      }),
    )
  }

  labels(id: string): Promise<Labels> {
    return this.#gate.run(() => Object.fromEntries((this.#stmts.labels.all(id) as Row[]).map((r) => [String(r.key), String(r.value)])))
  }

  setLabels(id: string, labels: Labels): Promise<void> {
    return this.#gate.run(() =>
      this.#atomic(() => {
        this.#stmts.clearLabels.run(id)
        for (const [key, value] of Object.entries(labels)) this.#stmts.insertLabel.run(id, key, value)
      }),
    )
  }

  recordLastSeen(seen: readonly LastSeen[]): Promise<void> {
    return this.#gate.run(() =>
      this.#atomic(() => {
        for (const s of seen) this.#stmts.recordLastSeen.run({ at: iso(s.at), id: s.deviceId })
      }),
    )
  }

  lastSeen(id: string): Promise<Date | null> {
    return this.#gate.run(() => dateOrNull(this.#stmts.lastSeen.get(id)))
  }

  listLastSeen(): Promise<LastSeen[]> {
    return this.#gate.run(() =>
      (this.#stmts.listLastSeen.all() as Row[]).map((r) => ({ deviceId: String(r.id), at: date(r.last_seen_at) })),
    )
  }

  insertCertificate(c: CertificateRecord): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#write(() =>
          this.#stmts.insertCert.run(
            c.serial,
            c.deviceId,
            c.fingerprint,
            iso(c.notBefore),
            iso(c.notAfter),
            c.status,
            c.supersededAt && iso(c.supersededAt),
            c.revokedAt && iso(c.revokedAt),
            c.revocationReason,
            c.pem,
            iso(c.createdAt),
            c.keySha256 ?? null,
          ),
        )
      } catch (err) {
        if (isConstraint(err) && /FOREIGN KEY/.test(String(err))) throw new DeviceNotFound(c.deviceId)
        if (isConstraint(err)) throw new CertificateExists(c.serial)
        throw err
      }
    })
  }

  getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    return this.#gate.run(() => this.#getCertificate(serial))
  }

  #getCertificate(serial: string): CertificateRecord | undefined {
    const row = this.#stmts.getCert.get(serial) as Row | undefined
    return row && toCertificate(row)
  }

  getCredential(fingerprint: string): Promise<CredentialRecord | undefined> {
    return this.#gate.run(() => {
      const row = this.#stmts.getCredential.get(fingerprint) as Row | undefined
      return row && toCredential(row)
    })
  }

  listCertificates(deviceId: string): Promise<CertificateRecord[]> {
    return this.#gate.run(() => (this.#stmts.listCerts.all(deviceId) as Row[]).map(toCertificate))
  }

  listRevokedCertificates(): Promise<CertificateRecord[]> {
    return this.#gate.run(() => (this.#stmts.listRevoked.all() as Row[]).map(toCertificate))
  }

  certificatesWithKey(keySha256: string): Promise<CertificateRecord[]> {
    return this.#gate.run(() => (this.#stmts.certsWithKey.all(keySha256) as Row[]).map(toCertificate))
  }

  countCertificatesExpiring(from: Date, to: Date): Promise<number> {
    return this.#gate.run(() => Number((this.#stmts.countExpiring.get(iso(from), iso(to)) as Row).n))
  }

  /** The read of the current fields and the update run in one gate call: no other flow's write between them. */
  updateCertificate(serial: string, u: CertificateUpdate): Promise<void> {
    return this.#gate.run(() => {
      const current = this.#getCertificate(serial)
      if (!current) return
      this.#write(() =>
        this.#stmts.updateCert.run(
          u.status,
          pick(u.supersededAt, current.supersededAt),
          pick(u.revokedAt, current.revokedAt),
          u.revocationReason === undefined ? current.revocationReason : u.revocationReason,
          serial,
        ),
      )
    })
  }

  appendAudit(e: NewAuditEntry): Promise<number> {
    return this.#gate.run(() => {
      try {
        const r = this.#write(() => this.#stmts.appendAudit.run(iso(e.at), e.actor, e.action, e.subject, JSON.stringify(e.details)))
        return Number(r.lastInsertRowid)
      } catch (err) {
        this.#auditWriteFailures++
        throw err
      }
    })
  }

  auditWriteFailures(): number {
    return this.#auditWriteFailures
  }

  listAudit(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    return this.#gate.run(() => this.#listAudit(filter))
  }

  #listAudit(filter: AuditFilter): AuditEntry[] {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.subject !== undefined) {
      where.push('subject = ?')
      params.push(filter.subject)
    }
    if (filter.action !== undefined) {
      where.push('action = ?')
      params.push(filter.action)
    }
    if (filter.before !== undefined) {
      where.push('id < ?')
      params.push(filter.before)
    }
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`
    return (this.#db.prepare(sql).all(...params, filter.limit ?? -1) as Row[]).map(toAudit)
  }

  appendEvent(type: string, data: Record<string, unknown>, at: Date): Promise<number> {
    return this.#gate.run(() => {
      const r = this.#write(() => this.#stmts.appendEvent.run(iso(at), type, JSON.stringify(data)))
      this.#commits.eventAppended(!this.#db.inTransaction)
      return Number(r.lastInsertRowid)
    })
  }

  eventsAfter(seq: number, limit: number): Promise<StoredEvent[]> {
    return this.#gate.run(() =>
      (this.#stmts.eventsAfter.all(seq, limit) as Row[]).map((r) => ({
        seq: Number(r.seq),
        at: date(r.at),
        type: String(r.type),
        data: JSON.parse(String(r.data)) as Record<string, unknown>,
      })),
    )
  }

  lastEventSeq(): Promise<number> {
    return this.#gate.run(() => Number((this.#stmts.lastSeq.get() as Row).seq))
  }

  dataVersion(): Promise<number> {
    return this.#gate.run(() => Number(this.#stmts.dataVersion.get()))
  }

  pruneEvents(before: Date): Promise<number> {
    return this.#gate.run(() => this.#write(() => this.#stmts.pruneEvents.run(iso(before)).changes))
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.#gate.run(() => {
      const row = this.#stmts.getMeta.get(key) as Row | undefined
      return row === undefined ? undefined : String(row.value)
    })
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.#gate.run(() => {
      this.#write(() => this.#stmts.setMeta.run(key, value))
    })
  }

  probeWrite(at: Date, busyTimeoutMs: number): Promise<void> {
    return this.#gate.run(() => {
      // better-sqlite3 waits synchronously: a short timeout keeps the event loop answering while another process holds the lock
      this.#db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`)
      try {
        this.#write(() => this.#db.transaction(() => this.#stmts.setMeta.run('health.probedAt', iso(at))).immediate())
      } finally {
        this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`)
      }
    })
  }

  close(): void {
    if (this.#db.open) this.#db.close()
  }
}

function pick(next: Date | null | undefined, current: Date | null): string | null {
  const d = next === undefined ? current : next
  return d ? iso(d) : null
}
