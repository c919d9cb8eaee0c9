import { normalizeSerial, type PeerIdentity } from '../../certs/index.ts'
import type {
  AuditRecord,
  ClaimLookup,
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
  /** the end of its renewal overlap, once renewed: lookups answer validUntil = min(notAfter, this) */
  supersededAt: Date | null
}

/** A claim certificate (CN claim:<claimId>); a revoked one is refused at CONNECT ('claim-revoked'), as the registry does. */
export interface FakeClaim {
  claimId: string
  serial: string
  revoked?: boolean
}

/**
 * An in-memory DeviceDirectory for broker tests (docs/conventions.md §13: fakes next to real implementations).
 * Devices and certificates live in Maps; lookups answer from them every time (no cache), events are
 * delivered synchronously to listeners, and every audit record is kept in `audits`.
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
  addClaim(claimId: string, serial: string): FakeClaim
  /** marks the claim revoked (later CONNECTs are refused) and emits claim.revoked */
  revokeClaim(claimId: string): void
  /** a renewal: sets supersededAt on the certificate and emits certificate.superseded */
  supersedeCertificate(serial: string, at: Date | string): void
  addDevice(deviceId: string, opts?: Partial<Omit<FakeDevice, 'deviceId'>>): FakeDevice
  /** registers a certificate serial (any form: colons, case, leading zeros) for a device; adds the device if new */
  addCertificate(deviceId: string, serial: string, status?: FakeCertificateStatus): FakeCertificate
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
  /** holds lookups until the returned function is called (for races with events) */
  holdLookups(): () => void
  auditsFor(action: string): AuditRecord[]
  listenerCount(): number
}

export function createFakeDirectory(): FakeDirectory {
  const devices = new Map<string, FakeDevice>()
  const certificates = new Map<string, FakeCertificate>()
  const audits: AuditRecord[] = []
  const lookups: PeerIdentity[] = []
  const claims = new Map<string, FakeClaim>()
  const claimLookups: { identity: PeerIdentity; claimId: string }[] = []
  const listeners = new Set<(e: ControlEvent) => void>()
  const failures: Error[] = []
  let hold: Promise<void> | null = null

  function answer(identity: PeerIdentity): DeviceLookup {
    const serial = identity.serial
    const cert = certificates.get(serial)
    if (!cert) return { kind: 'refused', reason: 'unknown-certificate', deviceId: identity.deviceId, serial }
    const device = devices.get(cert.deviceId)
    if (!device) return { kind: 'refused', reason: 'unknown-device', deviceId: cert.deviceId, serial }
    if (device.status === 'revoked') return { kind: 'refused', reason: 'revoked', deviceId: device.deviceId, serial }
    if (device.status === 'disabled') return { kind: 'refused', reason: 'disabled', deviceId: device.deviceId, serial }
    if (cert.status === 'revoked') return { kind: 'refused', reason: 'revoked', deviceId: device.deviceId, serial }
    if (cert.status === 'superseded') return { kind: 'refused', reason: 'superseded', deviceId: device.deviceId, serial }
    const validUntil = cert.supersededAt !== null && cert.supersededAt < identity.notAfter ? cert.supersededAt : identity.notAfter
    return { kind: 'active', deviceId: device.deviceId, tier: device.tier, group: device.group, serial, validUntil }
  }

  function answerClaim(identity: PeerIdentity, claimId: string): ClaimLookup {
    const claim = claims.get(identity.serial)
    if (!claim || claim.claimId !== claimId) return { kind: 'refused', reason: 'unknown-claim', claimId: claim?.claimId ?? null, serial: identity.serial }
    if (claim.revoked === true) return { kind: 'refused', reason: 'claim-revoked', claimId, serial: identity.serial }
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
      if (hold) await hold
      if (err) throw err
      return answer(identity)
    },
    claims,
    claimLookups,
    async lookupClaim(identity, claimId) {
      claimLookups.push({ identity, claimId })
      const err = failures.shift()
      if (hold) await hold
      if (err) throw err
      return answerClaim(identity, claimId)
    },
    addClaim(claimId, serial) {
      const claim: FakeClaim = { claimId, serial: normalizeSerial(serial) }
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
      c.supersededAt = new Date(at)
      fake.emit({ type: 'certificate.superseded', deviceId: c.deviceId, serial: c.serial, supersededAt: c.supersededAt.toISOString() })
    },
    onEvent(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    audit(record) {
      audits.push(record)
    },
    addDevice(deviceId, opts = {}) {
      const device: FakeDevice = { deviceId, status: 'active', tier: 'standard', group: null, ...opts }
      devices.set(deviceId, device)
      return device
    },
    addCertificate(deviceId, serial, status = 'active') {
      if (!devices.has(deviceId)) fake.addDevice(deviceId)
      const cert: FakeCertificate = { serial: normalizeSerial(serial), deviceId, status, supersededAt: null }
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
