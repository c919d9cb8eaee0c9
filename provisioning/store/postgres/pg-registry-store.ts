import { CertificateExists, DeviceExists, DeviceNotFound } from '../../errors.ts'
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
} from '../registry-store.ts'
import { PgAiUsageStore } from './pg-ai-usage-store.ts'
import { PgApiKeyStore } from './pg-api-key-store.ts'
import { PgAppStore } from './pg-app-store.ts'
import { PgClaimStore } from './pg-claim-store.ts'
import { PgDashboardSessionStore } from './pg-dashboard-session-store.ts'
import { PgDatabase, type PgDatabaseOptions, type PgListener } from './pg-database.ts'
import { isForeignKeyViolation, isUniqueViolation } from './pg-failure.ts'
import { PgLimitsStore } from './pg-limits-store.ts'
import { PgRouteStore } from './pg-route-store.ts'
import {
  CREDENTIAL_COLUMNS,
  date,
  dateOrNull,
  deviceWhere,
  json,
  num,
  Params,
  toAudit,
  toCertificate,
  toCredential,
  toDevice,
  whereClause,
} from './pg-rows.ts'
import { PgSettingsStore } from './pg-settings-store.ts'

/** meta key: the highest event id pruneEvents deleted, so lastEventSeq never goes back when every event is pruned */
const PRUNED_THROUGH = 'events.prunedThrough'

/**
 * The registry on PostgreSQL (cluster mode): the same records and semantics as SqliteRegistryStore, on a
 * PgDatabase that its sibling stores share (`settings`, `apiKeys`, `claims`, `limits`, `routes`, `apps`, `aiUsage`), so a
 * change in any of them, its audit entry and its event commit in one `transaction`. Every write runs in
 * a transaction (joining the caller's), under the database's writer lock.
 */
export class PgRegistryStore implements RegistryStore {
  readonly db: PgDatabase
  readonly settings: PgSettingsStore
  readonly apiKeys: PgApiKeyStore
  readonly claims: PgClaimStore
  readonly limits: PgLimitsStore
  readonly routes: PgRouteStore
  readonly apps: PgAppStore
  /** the dashboard's signed-in sessions (its writes take no writer lock: PgDashboardSessionStore) */
  readonly dashboardSessions: PgDashboardSessionStore
  /** the AI bridge's daily usage and last insights per device (its writes take no writer lock: PgAiUsageStore) */
  readonly aiUsage: PgAiUsageStore
  #auditWriteFailures = 0
  readonly #remote = new Set<() => void>()
  /** this node's LISTEN while anyone watches (onRemoteEvents) */
  #listening: PgListener | undefined

  constructor(db: PgDatabase) {
    this.db = db
    this.settings = new PgSettingsStore(db)
    this.apiKeys = new PgApiKeyStore(db)
    this.claims = new PgClaimStore(db)
    this.limits = new PgLimitsStore(db)
    this.routes = new PgRouteStore(db)
    this.apps = new PgAppStore(db)
    this.dashboardSessions = new PgDashboardSessionStore(db)
    this.aiUsage = new PgAiUsageStore(db)
  }

  /** Connects to the database at `url` and migrates its schema (PgDatabase.open). */
  static async open(url: string, options?: PgDatabaseOptions): Promise<PgRegistryStore> {
    return new PgRegistryStore(await PgDatabase.open(url, options))
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.db.transaction(fn)
  }

  onEventsCommitted(listener: () => void): () => void {
    return this.db.onEventsCommitted(listener)
  }

  /** LISTEN (PgDatabase.listen, reconnecting with back-off) while anyone watches; one connection for every listener. */
  onRemoteEvents(listener: () => void): () => void {
    this.#remote.add(listener)
    this.#listening ??= this.db.listen(() => {
      for (const l of [...this.#remote]) l()
    })
    return () => {
      this.#remote.delete(listener)
      if (this.#remote.size > 0 || this.#listening === undefined) return
      const stopping = this.#listening
      this.#listening = undefined
      void stopping.stop() // it ends its connection and swallows the error of one already gone
    }
  }

  async insertDevice(d: DeviceRecord): Promise<void> {
    try {
      await this.db.transaction(() =>
        this.db.query('INSERT INTO devices (id, group_name, tier, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)', [
          d.id,
          d.group,
          d.tier,
          d.status,
          d.createdAt,
          d.updatedAt,
        ]),
      )
    } catch (err) {
      if (isUniqueViolation(err)) throw new DeviceExists(d.id, d.id)
      throw err
    }
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> {
    const [row] = await this.db.query('SELECT * FROM devices WHERE id = $1', [id])
    return row && toDevice(row)
  }

  async listDevices(filter: DeviceFilter = {}): Promise<DeviceRecord[]> {
    const p = new Params()
    const where = deviceWhere(filter, (v) => p.add(v))
    if (filter.after !== undefined) where.push(`id > ${p.add(filter.after)}`)
    const limit = filter.limit === undefined ? '' : `LIMIT ${p.add(filter.limit)}`
    return (await this.db.query(`SELECT * FROM devices ${whereClause(where)} ORDER BY id ${limit}`, p.values)).map(toDevice)
  }

  async countDevices(filter: Omit<DeviceFilter, 'after' | 'limit'> = {}): Promise<number> {
    const p = new Params()
    const [row] = await this.db.query(`SELECT count(*) AS n FROM devices ${whereClause(deviceWhere(filter, (v) => p.add(v)))}`, p.values)
    return num(row?.n)
  }

  async updateDeviceStatus(id: string, status: DeviceStatus, at: Date): Promise<void> {
    await this.db.transaction(() => this.db.query('UPDATE devices SET status = $1, updated_at = $2 WHERE id = $3', [status, at, id]))
  }

  async updateDeviceFields(id: string, fields: DeviceFieldsUpdate, at: Date): Promise<void> {
    await this.db.transaction(async () => {
      if (fields.group !== undefined)
        await this.db.query('UPDATE devices SET group_name = $1, updated_at = $2 WHERE id = $3', [fields.group, at, id])
      if (fields.tier !== undefined)
        await this.db.query('UPDATE devices SET tier = $1, updated_at = $2 WHERE id = $3', [fields.tier, at, id])
    })
  }

  async labels(id: string): Promise<Labels> {
    const rows = await this.db.query('SELECT key, value FROM device_labels WHERE device_id = $1 ORDER BY key', [id])
    return Object.fromEntries(rows.map((r) => [String(r.key), String(r.value)]))
  }

  async setLabels(id: string, labels: Labels): Promise<void> {
    await this.db.transaction(async () => {
      await this.db.query('DELETE FROM device_labels WHERE device_id = $1', [id])
      for (const [key, value] of Object.entries(labels))
        await this.db.query('INSERT INTO device_labels (device_id, key, value) VALUES ($1, $2, $3)', [id, key, value])
    })
  }

  async recordLastSeen(seen: readonly LastSeen[]): Promise<void> {
    if (seen.length === 0) return
    // one statement for the batch: the later of each device's time and the stored one
    await this.db.transaction(() =>
      this.db.query(
        `UPDATE devices d SET last_seen_at = s.at
         FROM (SELECT id, max(at) AS at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) GROUP BY id) s
         WHERE d.id = s.id AND (d.last_seen_at IS NULL OR d.last_seen_at < s.at)`,
        [seen.map((s) => s.deviceId), seen.map((s) => s.at)],
      ),
    )
  }

  async lastSeen(id: string): Promise<Date | null> {
    const [row] = await this.db.query('SELECT last_seen_at FROM devices WHERE id = $1', [id])
    return dateOrNull(row?.last_seen_at)
  }

  async listLastSeen(): Promise<LastSeen[]> {
    const rows = await this.db.query('SELECT id, last_seen_at FROM devices WHERE last_seen_at IS NOT NULL ORDER BY id')
    return rows.map((r) => ({ deviceId: String(r.id), at: date(r.last_seen_at) }))
  }

  async insertCertificate(c: CertificateRecord): Promise<void> {
    try {
      await this.db.transaction(() =>
        this.db.query(
          `INSERT INTO certificates (serial, device_id, fingerprint, not_before, not_after, status, superseded_at,
             revoked_at, revocation_reason, pem, created_at, key_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            c.serial,
            c.deviceId,
            c.fingerprint,
            c.notBefore,
            c.notAfter,
            c.status,
            c.supersededAt,
            c.revokedAt,
            c.revocationReason,
            c.pem,
            c.createdAt,
            c.keySha256 ?? null,
          ],
        ),
      )
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new DeviceNotFound(c.deviceId)
      if (isUniqueViolation(err)) throw new CertificateExists(c.serial)
      throw err
    }
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const [row] = await this.db.query('SELECT * FROM certificates WHERE serial = $1', [serial])
    return row && toCertificate(row)
  }

  async getCredential(fingerprint: string): Promise<CredentialRecord | undefined> {
    const [row] = await this.db.query(`SELECT ${CREDENTIAL_COLUMNS} WHERE c.fingerprint = $1`, [fingerprint])
    return row && toCredential(row)
  }

  async listCertificates(deviceId: string): Promise<CertificateRecord[]> {
    return (await this.db.query('SELECT * FROM certificates WHERE device_id = $1 ORDER BY created_at, serial', [deviceId])).map(
      toCertificate,
    )
  }

  async listRevokedCertificates(): Promise<CertificateRecord[]> {
    return (await this.db.query("SELECT * FROM certificates WHERE status = 'revoked' ORDER BY revoked_at, serial")).map(toCertificate)
  }

  async certificatesWithKey(keySha256: string): Promise<CertificateRecord[]> {
    return (await this.db.query('SELECT * FROM certificates WHERE key_sha256 = $1 ORDER BY created_at, serial', [keySha256])).map(
      toCertificate,
    )
  }

  async countCertificatesExpiring(from: Date, to: Date): Promise<number> {
    const [row] = await this.db.query(
      `SELECT count(*) AS n FROM certificates c JOIN devices d ON d.id = c.device_id
       WHERE c.status = 'active' AND d.status = 'active' AND c.not_after >= $1 AND c.not_after < $2`,
      [from, to],
    )
    return num(row?.n)
  }

  async updateCertificate(serial: string, u: CertificateUpdate): Promise<void> {
    await this.db.transaction(async () => {
      const current = await this.getCertificate(serial)
      if (!current) return
      await this.db.query(
        'UPDATE certificates SET status = $1, superseded_at = $2, revoked_at = $3, revocation_reason = $4 WHERE serial = $5',
        [
          u.status,
          u.supersededAt === undefined ? current.supersededAt : u.supersededAt,
          u.revokedAt === undefined ? current.revokedAt : u.revokedAt,
          u.revocationReason === undefined ? current.revocationReason : u.revocationReason,
          serial,
        ],
      )
    })
  }

  async appendAudit(e: NewAuditEntry): Promise<number> {
    try {
      const [row] = await this.db.transaction(() =>
        this.db.query('INSERT INTO audit_log (at, actor, action, subject, details) VALUES ($1, $2, $3, $4, $5) RETURNING id', [
          e.at,
          e.actor,
          e.action,
          e.subject,
          JSON.stringify(e.details),
        ]),
      )
      return num(row?.id)
    } catch (err) {
      this.#auditWriteFailures++
      throw err
    }
  }

  auditWriteFailures(): number {
    return this.#auditWriteFailures
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    const p = new Params()
    const where: string[] = []
    if (filter.subject !== undefined) where.push(`subject = ${p.add(filter.subject)}`)
    if (filter.action !== undefined) where.push(`action = ${p.add(filter.action)}`)
    if (filter.before !== undefined) where.push(`id < ${p.add(filter.before)}`)
    const limit = filter.limit === undefined ? '' : `LIMIT ${p.add(filter.limit)}`
    return (await this.db.query(`SELECT * FROM audit_log ${whereClause(where)} ORDER BY id DESC ${limit}`, p.values)).map(toAudit)
  }

  /** In a transaction (the caller's, or its own): under the writer lock, so ids become visible in order; NOTIFY at commit. */
  async appendEvent(type: string, data: Record<string, unknown>, at: Date): Promise<number> {
    return this.db.transaction(async () => {
      const [row] = await this.db.query('INSERT INTO events (at, type, data) VALUES ($1, $2, $3) RETURNING seq', [
        at,
        type,
        JSON.stringify(data),
      ])
      this.db.eventAppended()
      return num(row?.seq)
    })
  }

  async eventsAfter(seq: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.db.query('SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit])
    return rows.map((r) => ({ seq: num(r.seq), at: date(r.at), type: String(r.type), data: json(r.data) }))
  }

  /** the last committed event id (never one a transaction still holds), or the last pruned one when none is left */
  async lastEventSeq(): Promise<number> {
    const [row] = await this.db.query(
      `SELECT GREATEST((SELECT max(seq) FROM events), (SELECT value::bigint FROM meta WHERE key = $1), 0) AS seq`,
      [PRUNED_THROUGH],
    )
    return num(row?.seq)
  }

  /**
   * The last committed event id (lastEventSeq: one read of the events' primary key, asked on every CONNECT),
   * not a count of LISTEN's notifications: a CONNECT on this node just after another node's revocation
   * committed must see it while that node's notification is still on its way (or lost on a half-open LISTEN
   * connection). Every change a CONNECT's answer depends on commits with its event, and event ids become
   * visible in id order (the writer lock), so the id moves exactly when the feed has something to read.
   */
  dataVersion(): Promise<number> {
    return this.lastEventSeq()
  }

  async pruneEvents(before: Date): Promise<number> {
    return this.db.transaction(async () => {
      const rows = await this.db.query('DELETE FROM events WHERE at < $1 RETURNING seq', [before])
      const highest = Math.max(0, ...rows.map((r) => num(r.seq)))
      if (highest > 0)
        await this.db.query(
          `INSERT INTO meta (key, value) VALUES ($1, $2)
           ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value::bigint, excluded.value::bigint)::text`,
          [PRUNED_THROUGH, String(highest)],
        )
      return rows.length
    })
  }

  async getMeta(key: string): Promise<string | undefined> {
    const [row] = await this.db.query('SELECT value FROM meta WHERE key = $1', [key])
    return row === undefined ? undefined : String(row.value)
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.transaction(() =>
      this.db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]),
    )
  }

  /** A committed write of `health.probedAt`, waiting at most busyTimeoutMs for the writer lock (GH_STORE_LOCKED past it). */
  async probeWrite(at: Date, busyTimeoutMs: number): Promise<void> {
    await this.db.transaction(
      () =>
        this.db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [
          'health.probedAt',
          at.toISOString(),
        ]),
      busyTimeoutMs,
    )
  }

  close(): Promise<void> {
    return this.db.close()
  }
}
