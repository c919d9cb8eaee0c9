import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { AuditRecord, ControlEvent, DeviceDirectory } from '../../broker/device-directory.ts'
import type { PeerIdentity } from '../../certs/index.ts'
import type { FixedClock } from '../helpers/clock.ts'
import { waitFor } from '../helpers/wait.ts'

/** A certificate as the CA issued it: the peer presenting it has exactly this identity. */
export interface IssuedCertificate {
  deviceId: string
  serial: string
  fingerprint: string
  notBefore: Date
  notAfter: Date
}

export interface IssuedClaim {
  claimId: string
  serial: string
  fingerprint: string
  /** when it stops provisioning */
  expiresAt: Date
  /** every use spent */
  usedUp?: boolean
}

/**
 * A DeviceDirectory with the control-plane writes the contract needs, done the way that implementation
 * sees them (the registry: its store and change feed; the fake: its maps and emit), on a fixed clock.
 */
export interface DirectoryFixture {
  directory: DeviceDirectory
  clock: FixedClock
  addDevice(deviceId: string, opts?: { tier?: string; group?: string | null }): void | Promise<void>
  addCertificate(cert: IssuedCertificate): void | Promise<void>
  revokeDevice(deviceId: string): void | Promise<void>
  disableDevice(deviceId: string): void | Promise<void>
  revokeCertificate(serial: string): void | Promise<void>
  /** a renewal: the certificate is superseded, its overlap ending at `at` */
  supersedeCertificate(serial: string, at: Date): void | Promise<void>
  addClaim(claim: IssuedClaim): void | Promise<void>
  revokeClaim(claimId: string): void | Promise<void>
  /** lets every event written so far reach onEvent listeners (the registry: its change feed catches up) */
  deliver(): void | Promise<void>
  /** every audit record written through the directory, oldest first */
  audits(): AuditRecord[] | Promise<AuditRecord[]>
}

export const NOW = new Date('2026-01-01T00:00:00.000Z')
const NOT_BEFORE = new Date('2025-12-01T00:00:00.000Z')
const NOT_AFTER = new Date('2026-12-01T00:00:00.000Z')
const at = (iso: string) => new Date(iso)
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

const issued = (deviceId: string, serial: string, over: Partial<IssuedCertificate> = {}): IssuedCertificate => ({
  deviceId,
  serial,
  fingerprint: sha256(`${deviceId}/${serial}`),
  notBefore: NOT_BEFORE,
  notAfter: NOT_AFTER,
  ...over,
})

/** the identity of a peer presenting `cert`, with what it presents changed by `over` */
const peer = (cert: IssuedCertificate, over: Partial<PeerIdentity> = {}): PeerIdentity => ({
  commonName: cert.deviceId,
  deviceId: cert.deviceId,
  serial: cert.serial,
  fingerprint: cert.fingerprint,
  notBefore: cert.notBefore,
  notAfter: cert.notAfter,
  ...over,
})

const claimCert = (claimId: string, serial: string, over: Partial<IssuedClaim> = {}): IssuedClaim => ({
  claimId,
  serial,
  fingerprint: sha256(`claim/${claimId}/${serial}`),
  expiresAt: at('2026-02-01T00:00:00.000Z'),
  ...over,
})

const claimPeer = (c: IssuedClaim, over: Partial<PeerIdentity> = {}): PeerIdentity => ({
  commonName: `claim:${c.claimId}`,
  deviceId: null,
  serial: c.serial,
  fingerprint: c.fingerprint,
  notBefore: NOT_BEFORE,
  notAfter: NOT_AFTER,
  ...over,
})

/**
 * What the broker may rely on from a DeviceDirectory (broker/device-directory.ts), whoever answers:
 * the registry's (provisioning/registry-directory.ts) in integration/, the fake (test/helpers/
 * fake-directory.ts) in unit/. `make` returns a fresh, empty directory whose clock reads NOW.
 */
export function deviceDirectoryContract(name: string, make: () => DirectoryFixture | Promise<DirectoryFixture>): void {
  async function withDevice(deviceId = 'pump-7', serial = 'aa01', opts?: { tier?: string; group?: string | null }) {
    const f = await make()
    const cert = issued(deviceId, serial)
    await f.addDevice(deviceId, opts)
    await f.addCertificate(cert)
    return { f, cert }
  }
  const refused = (reason: string, deviceId: string | null, serial: string) => ({ kind: 'refused', reason, deviceId, serial })

  describe(`${name} (DeviceDirectory contract)`, () => {
    it('answers active with the device, its tier and group, valid until the certificate notAfter', async () => {
      const { f, cert } = await withDevice('pump-7', 'aa01', { tier: 'premium', group: 'pumps' })
      expect(await f.directory.lookup(peer(cert))).toEqual({
        kind: 'active',
        deviceId: 'pump-7',
        tier: 'premium',
        group: 'pumps',
        serial: 'aa01',
        validUntil: NOT_AFTER,
      })
    })

    it('knows a device by id alone: active until it is revoked or disabled, unknown when it never existed', async () => {
      const { f } = await withDevice('pump-7', 'aa01')
      await f.addDevice('pump-8')
      expect(await f.directory.lookupDeviceById('pump-7')).toEqual({ kind: 'active', deviceId: 'pump-7' })
      await f.revokeDevice('pump-7')
      await f.disableDevice('pump-8')
      await f.deliver()
      expect(await f.directory.lookupDeviceById('pump-7')).toEqual({ kind: 'refused', reason: 'revoked', deviceId: 'pump-7' })
      expect(await f.directory.lookupDeviceById('pump-8')).toEqual({ kind: 'refused', reason: 'disabled', deviceId: 'pump-8' })
      expect(await f.directory.lookupDeviceById('pump-9')).toEqual({ kind: 'refused', reason: 'unknown-device', deviceId: 'pump-9' })
    })

    it('refuses an unknown certificate of a known device as unknown-certificate', async () => {
      const { f } = await withDevice()
      expect(await f.directory.lookup(peer(issued('pump-7', 'bb02')))).toEqual(refused('unknown-certificate', 'pump-7', 'bb02'))
    })

    it('refuses an unknown certificate of an unknown device as unknown-device', async () => {
      const { f } = await withDevice()
      expect(await f.directory.lookup(peer(issued('pump-9', 'cc03')))).toEqual(refused('unknown-device', 'pump-9', 'cc03'))
    })

    it('refuses a certificate whose CN is no device id as unknown-device, naming no device', async () => {
      const { f, cert } = await withDevice()
      expect(await f.directory.lookup(peer(cert, { commonName: 'pump/7', deviceId: null }))).toEqual(
        refused('unknown-device', null, 'aa01'),
      )
    })

    it('knows a certificate by serial and fingerprint together, for the device it was issued to', async () => {
      const { f, cert } = await withDevice()
      await f.addDevice('pump-8')
      const forged = peer(cert, { fingerprint: sha256('forged') })
      expect(await f.directory.lookup(forged)).toEqual(refused('unknown-certificate', 'pump-7', 'aa01'))
      expect(await f.directory.lookup(peer(cert, { commonName: 'pump-8', deviceId: 'pump-8' }))).toEqual(
        refused('unknown-certificate', 'pump-8', 'aa01'),
      )
      expect(await f.directory.lookup(peer(cert, { commonName: 'pump-6', deviceId: 'pump-6' }))).toEqual(
        refused('unknown-device', 'pump-6', 'aa01'),
      )
    })

    it.each([
      ['a revoked device', (f: DirectoryFixture) => f.revokeDevice('pump-7'), 'revoked'],
      ['a disabled device', (f: DirectoryFixture) => f.disableDevice('pump-7'), 'disabled'],
      ['a revoked certificate', (f: DirectoryFixture) => f.revokeCertificate('aa01'), 'revoked'],
      [
        'a revoked certificate of a disabled device',
        async (f: DirectoryFixture) => {
          await f.disableDevice('pump-7')
          await f.revokeCertificate('aa01')
        },
        'revoked',
      ],
    ] as const)('refuses %s, on the next lookup after the change', async (_name, change, reason) => {
      const { f, cert } = await withDevice()
      expect(await f.directory.lookup(peer(cert))).toMatchObject({ kind: 'active' })
      await change(f)
      expect(await f.directory.lookup(peer(cert))).toEqual(refused(reason, 'pump-7', 'aa01'))
    })

    it('keeps a superseded certificate active until its renewal overlap ends, valid until then, and refuses it from then on', async () => {
      const { f, cert } = await withDevice()
      const overlapEnd = at('2026-01-08T00:00:00.000Z')
      await f.supersedeCertificate('aa01', overlapEnd)
      expect(await f.directory.lookup(peer(cert))).toMatchObject({ kind: 'active', validUntil: overlapEnd })
      f.clock.set(at('2026-01-07T23:59:59.999Z'))
      expect(await f.directory.lookup(peer(cert))).toMatchObject({ kind: 'active', validUntil: overlapEnd })
      f.clock.set(overlapEnd)
      expect(await f.directory.lookup(peer(cert))).toEqual(refused('superseded', 'pump-7', 'aa01'))
    })

    it('answers validUntil = notAfter when the renewal overlap would outlast the certificate', async () => {
      const { f, cert } = await withDevice()
      await f.supersedeCertificate('aa01', at('2027-01-01T00:00:00.000Z'))
      expect(await f.directory.lookup(peer(cert))).toMatchObject({ kind: 'active', validUntil: NOT_AFTER })
    })

    it('refuses a certificate past its notAfter as expired and one before its notBefore as not-yet-valid', async () => {
      const { f, cert } = await withDevice()
      f.clock.set(at('2026-12-01T00:00:00.001Z'))
      expect(await f.directory.lookup(peer(cert))).toEqual(refused('expired', 'pump-7', 'aa01'))
      f.clock.set(at('2025-11-30T23:59:59.999Z'))
      expect(await f.directory.lookup(peer(cert))).toEqual(refused('not-yet-valid', 'pump-7', 'aa01'))
    })

    it('answers a claim certificate presented for its own claim', async () => {
      const f = await make()
      const c = claimCert('batch-1', 'c1a1')
      await f.addClaim(c)
      expect(await f.directory.lookupClaim(claimPeer(c), 'batch-1')).toEqual({ kind: 'claim', claimId: 'batch-1', serial: 'c1a1' })
    })

    it('refuses as unknown-claim, naming the claim asked for, a certificate that is not that claim’s', async () => {
      const f = await make()
      const c = claimCert('batch-1', 'c1a1')
      await f.addClaim(c)
      await f.addClaim(claimCert('batch-2', 'c2a2'))
      const unknown = { kind: 'refused', reason: 'unknown-claim', claimId: 'batch-2', serial: 'c1a1' }
      expect(await f.directory.lookupClaim(claimPeer(c), 'batch-2')).toEqual(unknown)
      expect(await f.directory.lookupClaim(claimPeer(c, { fingerprint: sha256('forged') }), 'batch-1')).toMatchObject({
        reason: 'unknown-claim',
        claimId: 'batch-1',
      })
      expect(await f.directory.lookupClaim(claimPeer(claimCert('batch-3', 'c3a3')), 'batch-3')).toMatchObject({
        reason: 'unknown-claim',
        claimId: 'batch-3',
      })
    })

    it.each([
      ['revoked', (f: DirectoryFixture) => f.revokeClaim('batch-1'), {}, 'claim-revoked'],
      ['past its expiry', (f: DirectoryFixture) => f.clock.set(at('2026-02-01T00:00:00.000Z')), {}, 'claim-expired'],
      ['used up', () => {}, { usedUp: true }, 'claim-used-up'],
    ] as const)('refuses a claim %s', async (_name, change, over, reason) => {
      const f = await make()
      const c = claimCert('batch-1', 'c1a1', over)
      await f.addClaim(c)
      await change(f)
      expect(await f.directory.lookupClaim(claimPeer(c), 'batch-1')).toEqual({
        kind: 'refused',
        reason,
        claimId: 'batch-1',
        serial: 'c1a1',
      })
    })

    it('tells its listeners about every change, each event once, until they unsubscribe', async () => {
      const { f } = await withDevice()
      await f.addDevice('pump-8')
      await f.addCertificate(issued('pump-8', 'bb01'))
      await f.addClaim(claimCert('batch-1', 'c1a1'))
      const seen: ControlEvent[] = []
      const off = f.directory.onEvent((e) => seen.push(e))
      await f.supersedeCertificate('aa01', at('2026-01-08T00:00:00.000Z'))
      await f.revokeCertificate('bb01')
      await f.disableDevice('pump-8')
      await f.revokeDevice('pump-7')
      await f.revokeClaim('batch-1')
      await f.deliver()
      await f.deliver()
      expect(seen).toEqual([
        { type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: '2026-01-08T00:00:00.000Z' },
        { type: 'certificate.revoked', deviceId: 'pump-8', serial: 'bb01' },
        { type: 'device.disabled', deviceId: 'pump-8' },
        { type: 'device.revoked', deviceId: 'pump-7' },
        { type: 'claim.revoked', claimId: 'batch-1' },
      ])
      off()
      await f.revokeDevice('pump-8')
      await f.deliver()
      expect(seen).toHaveLength(5)
    })

    it('keeps every audit record written through it, in order, details {} when none were given', async () => {
      const f = await make()
      f.directory.audit({ actor: 'broker', action: 'connect.refused', subject: 'pump-7', details: { reason: 'revoked' } })
      f.directory.audit({ actor: 'broker', action: 'session.closed', subject: 'pump-8' })
      // written behind (the broker never waits for an audit row): on PostgreSQL a read on another connection may come first
      await waitFor(async () => (await f.audits()).length === 2, 5000, 'the two audit records')
      expect(await f.audits()).toEqual([
        { actor: 'broker', action: 'connect.refused', subject: 'pump-7', details: { reason: 'revoked' } },
        { actor: 'broker', action: 'session.closed', subject: 'pump-8', details: {} },
      ])
    })
  })
}
