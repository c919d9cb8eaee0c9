import { normalizeSerial, systemClock, type Clock, type PeerIdentity } from '../../certs/index.ts'
import type {
  AppLookup,
  AppTopicClass,
  AuditRecord,
  ClaimLookup,
  ClaimRefusalReason,
  RefusalReason,
  ControlEvent,
  DeviceDirectory,
  DeviceLookup,
} from '../../broker/device-directory.ts'

export type FakeDeviceStatus = 'active' | 'disabled' | 'revoked'
export type FakeCertificateStatus = 'active' | 'revoked' | 'superseded'

export interface FakeDevice {
  deviceId: string
  status: FakeDeviceStatus
  tier: string
  group: string | null
}

export interface FakeCertificate {
  serial: string
  deviceId: string
  status: FakeCertificateStatus
  /**
   * the end of its renewal overlap, for a superseded certificate: until then lookups answer active with
   * validUntil = min(notAfter, this), from then on refused 'superseded' (null: refused at once)
   */
  supersededAt: Date | null
  /** when set, only a peer presenting this fingerprint is this certificate (the registry looks up by fingerprint) */
  fingerprint?: string
}

/**
 * A claim certificate (CN claim:<claimId>); one that can provision nothing now (revoked, expired, used up)
 * is refused at CONNECT, as the registry does.
 */
export interface FakeApp {
  name: string
  serial: string
  groups: string[] | null
  classes: AppTopicClass[]
  revoked?: boolean
}

export interface FakeClaim {
  claimId: string
  serial: string
  revoked?: boolean
  /** when it stops provisioning (refused 'claim-expired' from then on) */
  expiresAt?: Date
  /** every use spent (refused 'claim-used-up') */
  usedUp?: boolean
  /** when set, only a peer presenting this fingerprint is this claim's certificate */
  fingerprint?: string
}

/**
 * An in-memory DeviceDirectory for broker tests (docs/conventions.md §13: fakes next to real implementations),
 * held to test/contract/device-directory.contract.ts with the registry's directory. Devices and
 * certificates live in Maps; lookups answer from them every time (no cache) and judge validity (the
 * presented notBefore/notAfter, the renewal overlap) against the clock, events are delivered
 * synchronously to listeners, and every audit record is kept in `audits`.
 */
export interface FakeDirectory extends DeviceDirectory {
  readonly devices: Map<string, FakeDevice>
  /** keyed by normalized serial */
  readonly certificates: Map<string, FakeCertificate>
  readonly audits: AuditRecord[]
  readonly lookups: PeerIdentity[]
  /** keyed by normalized serial */
  readonly claims: Map<string, FakeClaim>
  readonly claimLookups: { identity: PeerIdentity; claimId: string }[]
  /** registers a claim certificate serial (any form) */
  addClaim(claimId: string, serial: string, opts?: Partial<Omit<FakeClaim, 'claimId' | 'serial'>>): FakeClaim
  /** keyed by normalized serial */
  readonly apps: Map<string, FakeApp>
  /** the app names asked for, in order */
  readonly appLookups: string[]
  /** registers an app certificate serial (any form); default: every group, telemetry only */
  addApp(name: string, serial: string, opts?: Partial<Omit<FakeApp, 'name' | 'serial'>>): FakeApp
  /** marks the app (given a serial: that certificate) revoked (later CONNECTs are refused) and emits app.revoked */
  revokeApp(name: string, serial?: string): void
  /** marks the claim revoked (later CONNECTs are refused) and emits claim.revoked */
  revokeClaim(claimId: string): void
  /** a renewal: the certificate becomes superseded with its overlap ending at `at`; emits certificate.superseded */
  supersedeCertificate(serial: string, at: Date | string): void
  addDevice(deviceId: string, opts?: Partial<Omit<FakeDevice, 'deviceId'>>): FakeDevice
  /** registers a certificate serial (any form: colons, case, leading zeros) for a device; adds the device if new */
  addCertificate(deviceId: string, serial: string, status?: FakeCertificateStatus, fingerprint?: string): FakeCertificate
  setDeviceStatus(deviceId: string, status: FakeDeviceStatus): void
  setCertificateStatus(serial: string, status: FakeCertificateStatus): void
  /** delivers an event to every listener */
  emit(event: ControlEvent): void
  /** revoke (or disable) in the store, then emit the matching event, as the control plane does */
  revokeDevice(deviceId: string): void
  disableDevice(deviceId: string): void
  revokeCertificate(serial: string): void
  /** the next lookups fail with this error (once each) */
  failNextLookup(err?: Error): void
  /** holds the answers of lookups (judged when asked) until the returned function is called (for races with events and time) */
  holdLookups(): () => void
  auditsFor(action: string): AuditRecord[]
  listenerCount(): number
}

export function createFakeDirectory(clock: Clock = systemClock): FakeDirectory {
  const devices = new Map<string, FakeDevice>()
  const certificates = new Map<string, FakeCertificate>()
  const audits: AuditRecord[] = []
  const lookups: PeerIdentity[] = []
  const claims = new Map<string, FakeClaim>()
  const claimLookups: { identity: PeerIdentity; claimId: string }[] = []
  const apps = new Map<string, FakeApp>()
  const appLookups: string[] = []
  const listeners = new Set<(e: ControlEvent) => void>()
  const failures: Error[] = []
  let hold: Promise<void> | null = null

  const presents = (identity: PeerIdentity, known: { fingerprint?: string }) =>
    known.fingerprint === undefined || known.fingerprint === identity.fingerprint

  function answer(identity: PeerIdentity): DeviceLookup {
    const refuse = (reason: RefusalReason): DeviceLookup => ({
      kind: 'refused',
      reason,
      deviceId: identity.deviceId,
      serial: identity.serial,
    })
    const cert = certificates.get(identity.serial)
    const device = cert && devices.get(cert.deviceId)
    if (!cert || !device || cert.deviceId !== identity.deviceId || !presents(identity, cert)) {
      return refuse(identity.deviceId !== null && devices.has(identity.deviceId) ? 'unknown-certificate' : 'unknown-device')
    }
    const now = clock.now().getTime()
    const overlapEnd = cert.status !== 'superseded' ? Number.POSITIVE_INFINITY : (cert.supersededAt?.getTime() ?? Number.NEGATIVE_INFINITY)
    if (device.status === 'revoked' || cert.status === 'revoked') return refuse('revoked')
    if (device.status === 'disabled') return refuse('disabled')
    if (now >= overlapEnd) return refuse('superseded')
    if (now > identity.notAfter.getTime()) return refuse('expired')
    if (now < identity.notBefore.getTime()) return refuse('not-yet-valid')
    const validUntil = new Date(Math.min(identity.notAfter.getTime(), overlapEnd))
    return { kind: 'active', deviceId: device.deviceId, tier: device.tier, group: device.group, serial: cert.serial, validUntil }
  }

  function answerClaim(identity: PeerIdentity, claimId: string): ClaimLookup {
    const refuse = (reason: ClaimRefusalReason): ClaimLookup => ({ kind: 'refused', reason, claimId, serial: identity.serial })
    const claim = claims.get(identity.serial)
    if (!claim || claim.claimId !== claimId || !presents(identity, claim)) return refuse('unknown-claim')
    if (claim.revoked === true) return refuse('claim-revoked')
    if (claim.expiresAt !== undefined && clock.now() >= claim.expiresAt) return refuse('claim-expired')
    if (claim.usedUp === true) return refuse('claim-used-up')
    return { kind: 'claim', claimId: claim.claimId, serial: identity.serial }
  }

  const fake: FakeDirectory = {
    devices,
    certificates,
    audits,
    lookups,
    async lookup(identity) {
      lookups.push(identity)
      const err = failures.shift()
      const result = err ? undefined : answer(identity)
      if (hold) await hold
      if (err) throw err
      return result as DeviceLookup
    },
    async lookupDeviceById(deviceId) {
      const device = devices.get(deviceId)
      if (hold) await hold
      if (!device) return { kind: 'refused', reason: 'unknown-device', deviceId }
      if (device.status !== 'active') return { kind: 'refused', reason: device.status, deviceId }
      return { kind: 'active', deviceId }
    },
    claims,
    claimLookups,
    async lookupClaim(identity, claimId) {
      claimLookups.push({ identity, claimId })
      const err = failures.shift()
      const result = err ? undefined : answerClaim(identity, claimId)
      if (hold) await hold
      if (err) throw err
      return result as ClaimLookup
    },
    apps,
    appLookups,
    async lookupApp(identity, name) {
      appLookups.push(name)
      // judged when asked, answered after a hold (as lookup)
      const app = apps.get(identity.serial)
      const result: AppLookup =
        !app || app.name !== name
          ? { kind: 'refused', reason: 'unknown-app', name, serial: identity.serial }
          : app.revoked === true
            ? { kind: 'refused', reason: 'app-revoked', name, serial: identity.serial }
            : { kind: 'app', name, serial: app.serial, groups: app.groups, classes: app.classes }
      if (hold) await hold
      return result
    },
    addApp(name, serial, opts = {}) {
      const app: FakeApp = { groups: null, classes: ['telemetry'], ...opts, name, serial: normalizeSerial(serial) }
      apps.set(app.serial, app)
      return app
    },
    revokeApp(name, serial) {
      const only = serial === undefined ? undefined : normalizeSerial(serial)
      for (const a of apps.values()) if (a.name === name && (only === undefined || a.serial === only)) a.revoked = true
      fake.emit(serial === undefined ? { type: 'app.revoked', name } : { type: 'app.revoked', name, serial })
    },
    addClaim(claimId, serial, opts = {}) {
      const claim: FakeClaim = { ...opts, claimId, serial: normalizeSerial(serial) }
      claims.set(claim.serial, claim)
      return claim
    },
    revokeClaim(claimId) {
      for (const c of claims.values()) if (c.claimId === claimId) c.revoked = true
      fake.emit({ type: 'claim.revoked', claimId })
    },
    supersedeCertificate(serial, at) {
      const c = certificates.get(normalizeSerial(serial))
      if (!c) throw new Error(`fake directory: no certificate ${serial}`)
      c.status = 'superseded'
      c.supersededAt = new Date(at)
      fake.emit({ type: 'certificate.superseded', deviceId: c.deviceId, serial: c.serial, supersededAt: c.supersededAt.toISOString() })
    },
    onEvent(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    audit(record) {
      audits.push({ ...record, details: record.details ?? {} }) // as the registry stores it
    },
    addDevice(deviceId, opts = {}) {
      const device: FakeDevice = { deviceId, status: 'active', tier: 'standard', group: null, ...opts }
      devices.set(deviceId, device)
      return device
    },
    addCertificate(deviceId, serial, status = 'active', fingerprint) {
      if (!devices.has(deviceId)) fake.addDevice(deviceId)
      const cert: FakeCertificate = {
        serial: normalizeSerial(serial),
        deviceId,
        status,
        supersededAt: null,
        ...(fingerprint === undefined ? {} : { fingerprint }),
      }
      certificates.set(cert.serial, cert)
      return cert
    },
    setDeviceStatus(deviceId, status) {
      const d = devices.get(deviceId)
      if (!d) throw new Error(`fake directory: no device ${deviceId}`)
      d.status = status
    },
    setCertificateStatus(serial, status) {
      const c = certificates.get(normalizeSerial(serial))
      if (!c) throw new Error(`fake directory: no certificate ${serial}`)
      c.status = status
    },
    emit(event) {
      for (const l of [...listeners]) l(event)
    },
    revokeDevice(deviceId) {
      fake.setDeviceStatus(deviceId, 'revoked')
      fake.emit({ type: 'device.revoked', deviceId })
    },
    disableDevice(deviceId) {
      fake.setDeviceStatus(deviceId, 'disabled')
      fake.emit({ type: 'device.disabled', deviceId })
    },
    revokeCertificate(serial) {
      const c = certificates.get(normalizeSerial(serial))
      if (!c) throw new Error(`fake directory: no certificate ${serial}`)
      c.status = 'revoked'
      fake.emit({ type: 'certificate.revoked', deviceId: c.deviceId, serial: c.serial })
    },
    failNextLookup(err = new Error('directory down')) {
      failures.push(err)
    },
    holdLookups() {
      let release!: () => void
      hold = new Promise<void>((r) => (release = r))
      return () => {
        hold = null
        release()
      }
    },
    auditsFor: (action) => audits.filter((a) => a.action === action),
    listenerCount: () => listeners.size,
  }
  return fake
}
