import { describe, expect, it } from 'vitest'
import type { CertificateRecord, DeviceRecord, RegistryStore } from '../../provisioning/store/registry-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')

export const device = (id: string, over: Partial<DeviceRecord> = {}): DeviceRecord => ({
  id,
  group: null,
  tier: 'standard',
  status: 'active',
  createdAt: t0,
  updatedAt: t0,
  ...over,
})

export const certificate = (serial: string, deviceId: string, over: Partial<CertificateRecord> = {}): CertificateRecord => ({
  serial,
  deviceId,
  fingerprint: `fp-${serial}`,
  notBefore: t0,
  notAfter: new Date('2027-01-01T00:00:00.000Z'),
  status: 'active',
  supersededAt: null,
  revokedAt: null,
  revocationReason: null,
  pem: `-----BEGIN CERTIFICATE-----\n${serial}\n-----END CERTIFICATE-----\n`,
  createdAt: t0,
  ...over,
})

/** The behaviour every RegistryStore must have (MQTT.js abstract_store style, docs/conventions.md §14). */
export function registryStoreContract(name: string, make: () => RegistryStore | Promise<RegistryStore>): void {
  describe(`${name} (RegistryStore contract)`, () => {
    it('stores a device and reads it back with every field', async () => {
      const store = await make()
      await store.insertDevice(device('pump-1', { group: 'pumps', tier: 'premium' }))
      expect(await store.getDevice('pump-1')).toEqual(device('pump-1', { group: 'pumps', tier: 'premium' }))
      expect(await store.getDevice('nope')).toBeUndefined()
    })

    it('refuses a second device with the same id', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      await expect(store.insertDevice(device('a'))).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_EXISTS' }))
    })

    it('lists devices by id with group and status filters and keyset pages', async () => {
      const store = await make()
      for (const id of ['c', 'a', 'b', 'd']) await store.insertDevice(device(id, { group: id < 'c' ? 'g1' : 'g2' }))
      await store.updateDeviceStatus('d', 'disabled', t0)
      expect((await store.listDevices()).map((d) => d.id)).toEqual(['a', 'b', 'c', 'd'])
      expect((await store.listDevices({ group: 'g1' })).map((d) => d.id)).toEqual(['a', 'b'])
      expect((await store.listDevices({ status: 'disabled' })).map((d) => d.id)).toEqual(['d'])
      expect((await store.listDevices({ after: 'b', limit: 1 })).map((d) => d.id)).toEqual(['c'])
      expect(await store.countDevices()).toBe(4)
      expect(await store.countDevices({ group: 'g2', status: 'active' })).toBe(1)
    })

    it('orders ids bytewise, whatever the database locale', async () => {
      const store = await make()
      for (const id of ['b', 'B', 'a-1', 'a_1', 'A']) await store.insertDevice(device(id))
      expect((await store.listDevices()).map((d) => d.id)).toEqual(['A', 'B', 'a-1', 'a_1', 'b'])
      expect((await store.listDevices({ after: 'B', limit: 2 })).map((d) => d.id)).toEqual(['a-1', 'a_1'])
    })

    it('keeps labels per device, replaced as a whole, and filters by labels, tier and certificate expiry (ANDed)', async () => {
      const store = await make()
      for (const id of ['a', 'b', 'c']) await store.insertDevice(device(id, { tier: id === 'c' ? 'premium' : 'standard' }))
      await store.setLabels('a', { site: 'north', line: '1' })
      await store.setLabels('b', { site: 'north' })
      await store.setLabels('c', { site: 'south', line: '1' })
      expect(await store.labels('a')).toEqual({ line: '1', site: 'north' })
      expect(await store.labels('nope')).toEqual({})
      expect((await store.listDevices({ labels: { site: 'north' } })).map((d) => d.id)).toEqual(['a', 'b'])
      expect((await store.listDevices({ labels: { site: 'north', line: '1' } })).map((d) => d.id)).toEqual(['a'])
      expect((await store.listDevices({ labels: { line: '1' }, tier: 'premium' })).map((d) => d.id)).toEqual(['c'])
      expect(await store.countDevices({ labels: { line: '1' } })).toBe(2)
      await store.setLabels('a', { site: 'south' })
      expect(await store.labels('a')).toEqual({ site: 'south' })
      expect((await store.listDevices({ labels: { line: '1' } })).map((d) => d.id)).toEqual(['c'])
      await store.insertCertificate(certificate('01', 'a', { notAfter: new Date('2026-02-01T00:00:00Z') }))
      await store.insertCertificate(certificate('02', 'b', { notAfter: new Date('2026-02-01T00:00:00Z'), status: 'revoked' }))
      await store.insertCertificate(certificate('03', 'c', { notAfter: new Date('2026-03-01T00:00:00Z') }))
      const expiringBefore = async (iso: string) => (await store.listDevices({ certificateExpiresBefore: new Date(iso) })).map((d) => d.id)
      expect(await expiringBefore('2026-02-15T00:00:00Z')).toEqual(['a'])
      expect(await expiringBefore('2026-03-02T00:00:00Z')).toEqual(['a', 'c'])
      expect(
        (await store.listDevices({ certificateExpiresBefore: new Date('2026-03-02T00:00:00Z'), after: 'a' })).map((d) => d.id),
      ).toEqual(['c'])
    })

    it('updates a device group and tier, keeping fields not given', async () => {
      const store = await make()
      await store.insertDevice(device('a', { group: 'g1' }))
      const t1 = new Date('2026-01-02T00:00:00.000Z')
      await store.updateDeviceFields('a', { tier: 'premium' }, t1)
      expect(await store.getDevice('a')).toMatchObject({ group: 'g1', tier: 'premium', updatedAt: t1 })
      await store.updateDeviceFields('a', { group: null }, t1)
      expect(await store.getDevice('a')).toMatchObject({ group: null, tier: 'premium' })
    })

    it('finds certificates by the SHA-256 of their public key', async () => {
      const store = await make()
      for (const id of ['a', 'b']) await store.insertDevice(device(id))
      await store.insertCertificate(certificate('01', 'a', { keySha256: 'k1' }))
      await store.insertCertificate(certificate('02', 'b', { keySha256: 'k2' }))
      await store.insertCertificate(certificate('03', 'b'))
      expect((await store.certificatesWithKey('k1')).map((c) => [c.serial, c.deviceId, c.keySha256])).toEqual([['01', 'a', 'k1']])
      expect(await store.certificatesWithKey('k3')).toEqual([])
      expect(await store.getCertificate('03')).toEqual(certificate('03', 'b'))
    })

    it('counts the active certificates of active devices that expire in a window', async () => {
      const store = await make()
      const at = (day: number) => new Date(Date.UTC(2026, 5, day))
      for (const id of ['a', 'b', 'c', 'd']) await store.insertDevice(device(id))
      await store.insertCertificate(certificate('01', 'a', { notAfter: at(5) }))
      await store.insertCertificate(certificate('02', 'b', { notAfter: at(10) }))
      await store.insertCertificate(certificate('03', 'c', { notAfter: at(6), status: 'superseded', supersededAt: at(1) }))
      await store.insertCertificate(certificate('04', 'd', { notAfter: at(6) }))
      await store.updateDeviceStatus('d', 'revoked', t0)
      expect(await store.countCertificatesExpiring(at(1), at(10))).toBe(1)
      expect(await store.countCertificatesExpiring(at(1), at(11))).toBe(2)
      expect(await store.countCertificatesExpiring(at(6), at(11))).toBe(1)
    })

    it('updates a device status and its updatedAt', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      const later = new Date('2026-02-01T00:00:00.000Z')
      await store.updateDeviceStatus('a', 'revoked', later)
      expect(await store.getDevice('a')).toMatchObject({ status: 'revoked', updatedAt: later, createdAt: t0 })
    })

    it('stores certificates per device and finds them by serial and fingerprint (times to the millisecond)', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      await store.insertCertificate(certificate('01', 'a', { notBefore: new Date('2026-01-01T00:00:00.123Z') }))
      await store.insertCertificate(certificate('02', 'a', { createdAt: new Date('2026-01-02T00:00:00.000Z') }))
      expect(await store.getCertificate('01')).toEqual(certificate('01', 'a', { notBefore: new Date('2026-01-01T00:00:00.123Z') }))
      expect((await store.getCredential('fp-02'))?.serial).toBe('02')
      expect((await store.listCertificates('a')).map((c) => c.serial)).toEqual(['01', '02'])
      expect(await store.listCertificates('zzz')).toEqual([])
    })

    it('reads a certificate by fingerprint with its device in one call (getCredential), as they are now', async () => {
      const store = await make()
      await store.insertDevice(device('a', { group: 'pumps', tier: 'premium' }))
      const superseded = new Date('2026-03-01T00:00:00.456Z')
      await store.insertCertificate(certificate('01', 'a', { notBefore: new Date('2026-01-01T00:00:00.123Z') }))
      await store.insertCertificate(certificate('02', 'a'))
      await store.updateCertificate('01', { status: 'superseded', supersededAt: superseded })
      expect(await store.getCredential('fp-01')).toEqual({
        serial: '01',
        deviceId: 'a',
        status: 'superseded',
        notBefore: new Date('2026-01-01T00:00:00.123Z'),
        notAfter: new Date('2027-01-01T00:00:00.000Z'),
        supersededAt: superseded,
        device: { status: 'active', tier: 'premium', group: 'pumps' },
      })
      expect(await store.getCredential('fp-02')).toMatchObject({ serial: '02', status: 'active', supersededAt: null })
      expect(await store.getCredential('fp-none')).toBeUndefined()
      // a change to the device or the certificate is in the next read (nothing kept between calls)
      await store.updateDeviceStatus('a', 'revoked', t0)
      await store.updateDeviceFields('a', { group: null, tier: 'standard' }, t0)
      await store.updateCertificate('02', { status: 'revoked', revokedAt: t0, revocationReason: 'keyCompromise' })
      expect(await store.getCredential('fp-02')).toMatchObject({
        status: 'revoked',
        device: { status: 'revoked', tier: 'standard', group: null },
      })
    })

    it('refuses a certificate for an unknown device and a duplicate serial or fingerprint', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      await expect(store.insertCertificate(certificate('01', 'ghost'))).rejects.toMatchObject({ code: 'GH_DEVICE_NOT_FOUND' })
      await store.insertCertificate(certificate('01', 'a'))
      await expect(store.insertCertificate(certificate('01', 'a', { fingerprint: 'other' }))).rejects.toThrow(
        expect.objectContaining({ code: 'GH_CERT_EXISTS' }),
      )
      await expect(store.insertCertificate(certificate('02', 'a', { fingerprint: 'fp-01' }))).rejects.toThrow(
        expect.objectContaining({ code: 'GH_CERT_EXISTS' }),
      )
    })

    it('revokes and supersedes certificates, keeping fields not named in the update', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      await store.insertCertificate(certificate('01', 'a'))
      await store.insertCertificate(certificate('02', 'a'))
      const at = new Date('2026-03-01T00:00:00.000Z')
      await store.updateCertificate('01', { status: 'revoked', revokedAt: at, revocationReason: 'keyCompromise' })
      await store.updateCertificate('02', { status: 'superseded', supersededAt: at })
      await store.updateCertificate('ghost', { status: 'revoked', revokedAt: at })
      expect(await store.getCertificate('01')).toMatchObject({ status: 'revoked', revokedAt: at, revocationReason: 'keyCompromise' })
      expect(await store.getCertificate('02')).toMatchObject({ status: 'superseded', supersededAt: at, revokedAt: null })
      expect((await store.listRevokedCertificates()).map((c) => c.serial)).toEqual(['01'])
    })

    it('rolls back every write of a transaction that throws', async () => {
      const store = await make()
      await store.insertDevice(device('keep'))
      await expect(
        store.transaction(async () => {
          await store.insertDevice(device('gone'))
          await store.insertCertificate(certificate('01', 'gone'))
          await store.appendAudit({ at: t0, actor: 'op', action: 'device.created', subject: 'gone', details: {} })
          await store.appendEvent('device.created', { deviceId: 'gone' }, t0)
          await store.setMeta('k', 'v')
          await store.insertDevice(device('keep'))
        }),
      ).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_EXISTS' }))
      expect(await store.getDevice('gone')).toBeUndefined()
      expect(await store.getCertificate('01')).toBeUndefined()
      expect(await store.listAudit()).toEqual([])
      expect(await store.eventsAfter(0, 10)).toEqual([])
      expect(await store.getMeta('k')).toBeUndefined()
      expect(await store.transaction(async () => 42)).toBe(42)
    })

    it('holds the calls of another async flow until the open transaction ends: they never see its writes nor roll back with it', async () => {
      const store = await make()
      let release = () => {}
      const held = new Promise<void>((r) => (release = r))
      const failing = store.transaction(async () => {
        await store.setMeta('k', 'inside')
        await store.appendAudit({ at: t0, actor: 'op', action: 'inside', subject: 's', details: {} })
        await held
        throw new Error('rolled back')
      })
      const seen = store.getMeta('k')
      const outside = store.appendAudit({ at: t0, actor: 'op', action: 'outside', subject: 's', details: {} })
      release()
      await expect(failing).rejects.toThrow('rolled back')
      expect(await seen).toBeUndefined()
      await outside
      expect((await store.listAudit()).map((e) => e.action)).toEqual(['outside'])
    })

    it('keeps the audit log newest first, filtered by subject and action, with details', async () => {
      const store = await make()
      const a = await store.appendAudit({ at: t0, actor: 'operator', action: 'device.created', subject: 'a', details: { group: 'g' } })
      const b = await store.appendAudit({
        at: t0,
        actor: 'broker',
        action: 'connect.refused',
        subject: 'b',
        details: { reason: 'revoked' },
      })
      await store.appendAudit({ at: t0, actor: 'operator', action: 'device.revoked', subject: 'a', details: {} })
      expect(b).toBeGreaterThan(a)
      expect((await store.listAudit()).map((e) => e.action)).toEqual(['device.revoked', 'connect.refused', 'device.created'])
      expect((await store.listAudit({ subject: 'a' })).map((e) => e.action)).toEqual(['device.revoked', 'device.created'])
      expect((await store.listAudit({ action: 'connect.refused' }))[0]).toMatchObject({
        actor: 'broker',
        subject: 'b',
        details: { reason: 'revoked' },
        at: t0,
      })
      expect((await store.listAudit({ before: b, limit: 5 })).map((e) => e.id)).toEqual([a])
      expect(store.auditWriteFailures()).toBe(0)
    })

    it('numbers events in order, reads them after a sequence number and prunes old ones', async () => {
      const store = await make()
      expect(await store.lastEventSeq()).toBe(0)
      const s1 = await store.appendEvent('device.revoked', { deviceId: 'a' }, t0)
      const s2 = await store.appendEvent('device.disabled', { deviceId: 'b' }, new Date('2026-01-02T00:00:00.000Z'))
      expect(s2).toBeGreaterThan(s1)
      expect(await store.lastEventSeq()).toBe(s2)
      expect(await store.eventsAfter(s1, 10)).toEqual([
        { seq: s2, type: 'device.disabled', data: { deviceId: 'b' }, at: new Date('2026-01-02T00:00:00.000Z') },
      ])
      expect((await store.eventsAfter(0, 1)).map((e) => e.seq)).toEqual([s1])
      expect(await store.pruneEvents(new Date('2026-01-01T12:00:00.000Z'))).toBe(1)
      expect((await store.eventsAfter(0, 10)).map((e) => e.seq)).toEqual([s2])
      expect(await store.lastEventSeq()).toBe(s2)
      expect(await store.pruneEvents(new Date('2027-01-01T00:00:00.000Z'))).toBe(1)
      expect(await store.lastEventSeq()).toBe(s2) // every event pruned: the last id stays
      expect(await store.appendEvent('device.revoked', { deviceId: 'c' }, t0)).toBeGreaterThan(s2)
    })

    it('tells listeners after a commit that appended events, and not after a rollback or an event-free commit', async () => {
      const store = await make()
      let calls = 0
      const off = store.onEventsCommitted(() => calls++)
      await store.transaction(async () => {
        await store.appendEvent('device.created', { deviceId: 'a' }, t0)
        await store.appendEvent('certificate.issued', { deviceId: 'a', serial: '01' }, t0)
        expect(calls).toBe(0) // not before the commit
      })
      expect(calls).toBe(1)
      await expect(
        store.transaction(async () => {
          await store.appendEvent('device.created', { deviceId: 'b' }, t0)
          throw new Error('rolled back')
        }),
      ).rejects.toThrow('rolled back')
      await store.transaction(async () => await store.setMeta('k', 'v'))
      expect(calls).toBe(1)
      await store.appendEvent('device.revoked', { deviceId: 'a' }, t0) // a lone write commits at once
      expect(calls).toBe(2)
      off()
      await store.appendEvent('device.revoked', { deviceId: 'a' }, t0)
      expect(calls).toBe(2)
    })

    it('records when devices were last seen, keeping the later time and ignoring unknown ids', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      await store.insertDevice(device('b'))
      expect(await store.lastSeen('a')).toBeNull()
      const t1 = new Date('2026-01-02T00:00:00.000Z')
      const t2 = new Date('2026-01-03T00:00:00.000Z')
      await store.recordLastSeen([
        { deviceId: 'a', at: t2 },
        { deviceId: 'b', at: t1 },
        { deviceId: 'ghost', at: t1 },
        { deviceId: 'b', at: t0 },
      ])
      await store.recordLastSeen([{ deviceId: 'a', at: t1 }])
      await store.recordLastSeen([])
      expect(await store.lastSeen('a')).toEqual(t2)
      expect(await store.lastSeen('ghost')).toBeNull()
      expect(await store.listLastSeen()).toEqual([
        { deviceId: 'a', at: t2 },
        { deviceId: 'b', at: t1 },
      ])
      expect(await store.getDevice('a')).toEqual(device('a'))
    })

    it('keeps metadata by key and overwrites on set', async () => {
      const store = await make()
      expect(await store.getMeta('crl.number')).toBeUndefined()
      await store.setMeta('crl.number', '1')
      await store.setMeta('crl.number', '2')
      expect(await store.getMeta('crl.number')).toBe('2')
    })

    it('probes a write: it commits the probe time and changes nothing else', async () => {
      const store = await make()
      await store.insertDevice(device('a'))
      await store.probeWrite(t0, 100)
      expect(await store.getMeta('health.probedAt')).toBe(t0.toISOString())
      expect((await store.listDevices()).map((d) => d.id)).toEqual(['a'])
    })
  })
}
