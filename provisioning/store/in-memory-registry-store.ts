import { CommitNotifier } from './commit-notifier.ts'
import { TransactionGate } from './transaction-gate.ts'
import { CertificateExists, DeviceExists, DeviceNotFound } from '../errors.ts'
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

const clone = <T>(v: T): T => structuredClone(v)

interface State {
  devices: Map<string, DeviceRecord>
  certs: Map<string, CertificateRecord>
  audit: AuditEntry[]
  events: StoredEvent[]
  meta: Map<string, string>
  lastSeen: Map<string, Date>
  labels: Map<string, Labels>
  seq: number
  auditSeq: number
}

/**
 * The test double of the registry (docs/conventions.md §13-14): same contract as SqliteRegistryStore, in
 * memory. transaction() (a TransactionGate) snapshots the state and restores it if fn throws, so atomicity holds too.
 */
export class InMemoryRegistryStore implements RegistryStore {
  #devices = new Map<string, DeviceRecord>()
  #certs = new Map<string, CertificateRecord>()
  #audit: AuditEntry[] = []
  #events: StoredEvent[] = []
  #meta = new Map<string, string>()
  #lastSeen = new Map<string, Date>()
  #labels = new Map<string, Labels>()
  #seq = 0
  #auditSeq = 0

  readonly #commits = new CommitNotifier()

  onEventsCommitted(listener: () => void): () => void {
    return this.#commits.subscribe(listener)
  }

  /** one process: there is no other node to hear from */
  onRemoteEvents(_listener: () => void): () => void {
    return () => {}
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.#gate.transaction(fn)
  }

  #snapshot: State | undefined

  #state(): State {
    return clone({
      devices: this.#devices,
      certs: this.#certs,
      audit: this.#audit,
      events: this.#events,
      meta: this.#meta,
      lastSeen: this.#lastSeen,
      labels: this.#labels,
      seq: this.#seq,
      auditSeq: this.#auditSeq,
    })
  }

  readonly #gate = new TransactionGate({
    begin: () => {
      this.#snapshot = this.#state()
    },
    commit: () => {
      this.#snapshot = undefined
      this.#commits.committed()
    },
    rollback: () => {
      const snapshot = this.#snapshot
      this.#snapshot = undefined
      if (snapshot) {
        this.#devices = snapshot.devices
        this.#certs = snapshot.certs
        this.#audit = snapshot.audit
        this.#events = snapshot.events
        this.#meta = snapshot.meta
        this.#lastSeen = snapshot.lastSeen
        this.#labels = snapshot.labels
        this.#seq = snapshot.seq
        this.#auditSeq = snapshot.auditSeq
      }
      this.#commits.rolledBack()
    },
  })

  insertDevice(device: DeviceRecord): Promise<void> {
    return this.#gate.run(() => {
      if (this.#devices.has(device.id)) throw new DeviceExists(device.id, device.id)
      this.#devices.set(device.id, clone(device))
    })
  }

  getDevice(id: string): Promise<DeviceRecord | undefined> {
    return this.#gate.run(() => {
      const d = this.#devices.get(id)
      return d && clone(d)
    })
  }

  listDevices(filter: DeviceFilter = {}): Promise<DeviceRecord[]> {
    return this.#gate.run(() => {
      const all = [...this.#devices.values()]
        .filter((d) => this.#matches(d, filter) && (filter.after === undefined || d.id > filter.after))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      return clone(filter.limit === undefined ? all : all.slice(0, filter.limit))
    })
  }

  countDevices(filter: Omit<DeviceFilter, 'after' | 'limit'> = {}): Promise<number> {
    return this.#gate.run(() => [...this.#devices.values()].filter((d) => this.#matches(d, filter)).length)
  }

  updateDeviceStatus(id: string, status: DeviceStatus, at: Date): Promise<void> {
    return this.#gate.run(() => {
      const d = this.#devices.get(id)
      if (d) Object.assign(d, { status, updatedAt: new Date(at) })
    })
  }

  updateDeviceFields(id: string, fields: DeviceFieldsUpdate, at: Date): Promise<void> {
    return this.#gate.run(() => {
      const d = this.#devices.get(id)
      if (!d) return
      if (fields.group !== undefined) d.group = fields.group
      if (fields.tier !== undefined) d.tier = fields.tier
      d.updatedAt = new Date(at)
    })
  }

  labels(id: string): Promise<Labels> {
    return this.#gate.run(() =>
      Object.fromEntries(Object.entries(this.#labels.get(id) ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    )
  }

  setLabels(id: string, labels: Labels): Promise<void> {
    return this.#gate.run(() => {
      if (!this.#devices.has(id)) throw new DeviceNotFound(id)
      this.#labels.set(id, { ...labels })
    })
  }

  recordLastSeen(seen: readonly LastSeen[]): Promise<void> {
    return this.#gate.run(() => {
      for (const { deviceId, at } of seen) {
        const known = this.#lastSeen.get(deviceId)
        if (this.#devices.has(deviceId) && (!known || known < at)) this.#lastSeen.set(deviceId, new Date(at))
      }
    })
  }

  lastSeen(id: string): Promise<Date | null> {
    return this.#gate.run(() => {
      const at = this.#lastSeen.get(id)
      return at ? new Date(at) : null
    })
  }

  listLastSeen(): Promise<LastSeen[]> {
    return this.#gate.run(() =>
      [...this.#lastSeen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([deviceId, at]) => ({ deviceId, at: new Date(at) })),
    )
  }

  insertCertificate(cert: CertificateRecord): Promise<void> {
    return this.#gate.run(() => {
      if (!this.#devices.has(cert.deviceId)) throw new DeviceNotFound(cert.deviceId)
      const clash = this.#certs.has(cert.serial) || [...this.#certs.values()].some((c) => c.fingerprint === cert.fingerprint)
      if (clash) throw new CertificateExists(cert.serial)
      this.#certs.set(cert.serial, clone(cert))
    })
  }

  getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    return this.#gate.run(() => {
      const c = this.#certs.get(serial)
      return c && clone(c)
    })
  }

  getCredential(fingerprint: string): Promise<CredentialRecord | undefined> {
    return this.#gate.run(() => {
      const c = [...this.#certs.values()].find((c) => c.fingerprint === fingerprint)
      const d = c && this.#devices.get(c.deviceId)
      if (!c || !d) return undefined
      const { serial, deviceId, status, notBefore, notAfter, supersededAt } = clone(c)
      return { serial, deviceId, status, notBefore, notAfter, supersededAt, device: { status: d.status, tier: d.tier, group: d.group } }
    })
  }

  listCertificates(deviceId: string): Promise<CertificateRecord[]> {
    return this.#gate.run(() => this.#sortedCerts((c) => c.deviceId === deviceId))
  }

  #sortedCerts(which: (c: CertificateRecord) => boolean): CertificateRecord[] {
    return clone(
      [...this.#certs.values()]
        .filter(which)
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.serial < b.serial ? -1 : 1)),
    )
  }

  listRevokedCertificates(): Promise<CertificateRecord[]> {
    return this.#gate.run(() =>
      clone(
        [...this.#certs.values()]
          .filter((c) => c.status === 'revoked')
          .sort((a, b) => (a.revokedAt?.getTime() ?? 0) - (b.revokedAt?.getTime() ?? 0) || (a.serial < b.serial ? -1 : 1)),
      ),
    )
  }

  certificatesWithKey(keySha256: string): Promise<CertificateRecord[]> {
    return this.#gate.run(() => this.#sortedCerts((c) => c.keySha256 === keySha256))
  }

  countCertificatesExpiring(from: Date, to: Date): Promise<number> {
    return this.#gate.run(
      () =>
        [...this.#certs.values()].filter(
          (c) =>
            c.status === 'active' &&
            this.#devices.get(c.deviceId)?.status === 'active' &&
            c.notAfter.getTime() >= from.getTime() &&
            c.notAfter.getTime() < to.getTime(),
        ).length,
    )
  }

  updateCertificate(serial: string, u: CertificateUpdate): Promise<void> {
    return this.#gate.run(() => {
      const c = this.#certs.get(serial)
      if (!c) return
      c.status = u.status
      if (u.supersededAt !== undefined) c.supersededAt = u.supersededAt && new Date(u.supersededAt)
      if (u.revokedAt !== undefined) c.revokedAt = u.revokedAt && new Date(u.revokedAt)
      if (u.revocationReason !== undefined) c.revocationReason = u.revocationReason
    })
  }

  appendAudit(entry: NewAuditEntry): Promise<number> {
    return this.#gate.run(() => {
      const id = ++this.#auditSeq
      this.#audit.push(clone({ ...entry, id }))
      return id
    })
  }

  /** an in-memory append cannot fail */
  auditWriteFailures(): number {
    return 0
  }

  listAudit(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    return this.#gate.run(() => this.#listAudit(filter))
  }

  #listAudit(filter: AuditFilter): AuditEntry[] {
    const rows = this.#audit
      .filter(
        (e) =>
          (filter.subject === undefined || e.subject === filter.subject) &&
          (filter.action === undefined || e.action === filter.action) &&
          (filter.before === undefined || e.id < filter.before),
      )
      .reverse()
    return clone(filter.limit === undefined ? rows : rows.slice(0, filter.limit))
  }

  appendEvent(type: string, data: Record<string, unknown>, at: Date): Promise<number> {
    return this.#gate.run(() => {
      const seq = ++this.#seq
      this.#events.push(clone({ seq, type, data, at }))
      this.#commits.eventAppended(this.#snapshot === undefined)
      return seq
    })
  }

  eventsAfter(seq: number, limit: number): Promise<StoredEvent[]> {
    return this.#gate.run(() => clone(this.#events.filter((e) => e.seq > seq).slice(0, limit)))
  }

  lastEventSeq(): Promise<number> {
    return this.#gate.run(() => this.#seq)
  }

  /** one process, one "connection": every commit is this process's own, reported by onEventsCommitted */
  dataVersion(): Promise<number> {
    return this.#gate.run(() => 0)
  }

  pruneEvents(before: Date): Promise<number> {
    return this.#gate.run(() => {
      const n = this.#events.length
      this.#events = this.#events.filter((e) => e.at >= before)
      return n - this.#events.length
    })
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.#gate.run(() => this.#meta.get(key))
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.#gate.run(() => {
      this.#meta.set(key, value)
    })
  }

  probeWrite(at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#meta.set('health.probedAt', at.toISOString())
    })
  }

  close(): void {}

  #matches(d: DeviceRecord, f: Omit<DeviceFilter, 'after' | 'limit'>): boolean {
    const labels = this.#labels.get(d.id) ?? {}
    const before = f.certificateExpiresBefore
    return (
      (f.group === undefined || d.group === f.group) &&
      (f.status === undefined || d.status === f.status) &&
      (f.tier === undefined || d.tier === f.tier) &&
      Object.entries(f.labels ?? {}).every(([k, v]) => labels[k] === v) &&
      (before === undefined ||
        [...this.#certs.values()].some((c) => c.deviceId === d.id && c.status === 'active' && c.notAfter.getTime() < before.getTime()))
    )
  }
}
