import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { certificate, device } from '../../contract/registry-store.contract.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'

// The RegistryStore contract (test/contract/registry-store.contract.ts), call for call, against PostgreSQL:
// that suite is synchronous until the registry store is async (issue 13); fold these into it then. The
// sibling stores (claims, apps, routes, API keys, limits, settings) run their own contract suites in
// pg-store-contracts.test.ts.
const t0 = new Date('2026-01-01T00:00:00.000Z')
const available = postgresAvailable()

describe.skipIf(!available)('PgRegistryStore (the RegistryStore contract on PostgreSQL)', () => {
  let server: PostgresServer
  let store: PgRegistryStore

  beforeAll(async () => {
    server = await startPostgres()
    store = await PgRegistryStore.open(await server.createDatabase('registry'))
  })
  afterAll(async () => {
    await store?.close()
    await server?.stop()
  })
  beforeEach(async () => {
    const tables = (await store.db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'"))
      .map((r) => String(r.tablename))
      .join(', ')
    await store.db.query(`TRUNCATE ${tables} RESTART IDENTITY CASCADE`)
  })

  it('stores a device and reads it back with every field', async () => {
    await store.insertDevice(device('pump-1', { group: 'pumps', tier: 'premium' }))
    expect(await store.getDevice('pump-1')).toEqual(device('pump-1', { group: 'pumps', tier: 'premium' }))
    expect(await store.getDevice('nope')).toBeUndefined()
  })

  it('refuses a second device with the same id', async () => {
    await store.insertDevice(device('a'))
    await expect(store.insertDevice(device('a'))).rejects.toMatchObject({ code: 'GH_DEVICE_EXISTS' })
  })

  it('lists devices by id with group and status filters and keyset pages', async () => {
    for (const id of ['c', 'a', 'b', 'd']) await store.insertDevice(device(id, { group: id < 'c' ? 'g1' : 'g2' }))
    await store.updateDeviceStatus('d', 'disabled', t0)
    const ids = async (f?: Parameters<PgRegistryStore['listDevices']>[0]) => (await store.listDevices(f)).map((d) => d.id)
    expect(await ids()).toEqual(['a', 'b', 'c', 'd'])
    expect(await ids({ group: 'g1' })).toEqual(['a', 'b'])
    expect(await ids({ status: 'disabled' })).toEqual(['d'])
    expect(await ids({ after: 'b', limit: 1 })).toEqual(['c'])
    expect(await store.countDevices()).toBe(4)
    expect(await store.countDevices({ group: 'g2', status: 'active' })).toBe(1)
  })

  it('orders ids bytewise, as SQLite does, whatever the database locale', async () => {
    for (const id of ['b', 'B', 'a-1', 'a_1', 'A']) await store.insertDevice(device(id))
    expect((await store.listDevices()).map((d) => d.id)).toEqual(['A', 'B', 'a-1', 'a_1', 'b'])
    expect((await store.listDevices({ after: 'B', limit: 2 })).map((d) => d.id)).toEqual(['a-1', 'a_1'])
  })

  it('keeps labels per device, replaced as a whole, and filters by labels, tier and certificate expiry (ANDed)', async () => {
    for (const id of ['a', 'b', 'c']) await store.insertDevice(device(id, { tier: id === 'c' ? 'premium' : 'standard' }))
    await store.setLabels('a', { site: 'north', line: '1' })
    await store.setLabels('b', { site: 'north' })
    await store.setLabels('c', { site: 'south', line: '1' })
    const ids = async (f: Parameters<PgRegistryStore['listDevices']>[0]) => (await store.listDevices(f)).map((d) => d.id)
    expect(await store.labels('a')).toEqual({ line: '1', site: 'north' })
    expect(await store.labels('nope')).toEqual({})
    expect(await ids({ labels: { site: 'north' } })).toEqual(['a', 'b'])
    expect(await ids({ labels: { site: 'north', line: '1' } })).toEqual(['a'])
    expect(await ids({ labels: { line: '1' }, tier: 'premium' })).toEqual(['c'])
    expect(await store.countDevices({ labels: { line: '1' } })).toBe(2)
    await store.setLabels('a', { site: 'south' })
    expect(await store.labels('a')).toEqual({ site: 'south' })
    expect(await ids({ labels: { line: '1' } })).toEqual(['c'])
    await store.insertCertificate(certificate('01', 'a', { notAfter: new Date('2026-02-01T00:00:00Z') }))
    await store.insertCertificate(certificate('02', 'b', { notAfter: new Date('2026-02-01T00:00:00Z'), status: 'revoked' }))
    await store.insertCertificate(certificate('03', 'c', { notAfter: new Date('2026-03-01T00:00:00Z') }))
    expect(await ids({ certificateExpiresBefore: new Date('2026-02-15T00:00:00Z') })).toEqual(['a'])
    expect(await ids({ certificateExpiresBefore: new Date('2026-03-02T00:00:00Z') })).toEqual(['a', 'c'])
    expect(await ids({ certificateExpiresBefore: new Date('2026-03-02T00:00:00Z'), after: 'a' })).toEqual(['c'])
  })

  it('updates a device group and tier, keeping fields not given', async () => {
    await store.insertDevice(device('a', { group: 'g1' }))
    const t1 = new Date('2026-01-02T00:00:00.000Z')
    await store.updateDeviceFields('a', { tier: 'premium' }, t1)
    expect(await store.getDevice('a')).toMatchObject({ group: 'g1', tier: 'premium', updatedAt: t1 })
    await store.updateDeviceFields('a', { group: null }, t1)
    expect(await store.getDevice('a')).toMatchObject({ group: null, tier: 'premium' })
  })

  it('finds certificates by the SHA-256 of their public key', async () => {
    for (const id of ['a', 'b']) await store.insertDevice(device(id))
    await store.insertCertificate(certificate('01', 'a', { keySha256: 'k1' }))
    await store.insertCertificate(certificate('02', 'b', { keySha256: 'k2' }))
    await store.insertCertificate(certificate('03', 'b'))
    expect((await store.certificatesWithKey('k1')).map((c) => [c.serial, c.deviceId, c.keySha256])).toEqual([['01', 'a', 'k1']])
    expect(await store.certificatesWithKey('k3')).toEqual([])
    expect(await store.getCertificate('03')).toEqual(certificate('03', 'b'))
  })

  it('counts the active certificates of active devices that expire in a window', async () => {
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
    await store.insertDevice(device('a'))
    const later = new Date('2026-02-01T00:00:00.000Z')
    await store.updateDeviceStatus('a', 'revoked', later)
    expect(await store.getDevice('a')).toMatchObject({ status: 'revoked', updatedAt: later, createdAt: t0 })
  })

  it('stores certificates per device and finds them by serial and fingerprint (times to the millisecond)', async () => {
    await store.insertDevice(device('a'))
    await store.insertCertificate(certificate('01', 'a', { notBefore: new Date('2026-01-01T00:00:00.123Z') }))
    await store.insertCertificate(certificate('02', 'a', { createdAt: new Date('2026-01-02T00:00:00.000Z') }))
    expect(await store.getCertificate('01')).toEqual(certificate('01', 'a', { notBefore: new Date('2026-01-01T00:00:00.123Z') }))
    expect((await store.getCertificateByFingerprint('fp-02'))?.serial).toBe('02')
    expect((await store.listCertificates('a')).map((c) => c.serial)).toEqual(['01', '02'])
    expect(await store.listCertificates('zzz')).toEqual([])
  })

  it('refuses a certificate for an unknown device and a duplicate serial or fingerprint', async () => {
    await store.insertDevice(device('a'))
    await expect(store.insertCertificate(certificate('01', 'ghost'))).rejects.toMatchObject({ code: 'GH_DEVICE_NOT_FOUND' })
    await store.insertCertificate(certificate('01', 'a'))
    await expect(store.insertCertificate(certificate('01', 'a', { fingerprint: 'other' }))).rejects.toMatchObject({
      code: 'GH_CERT_EXISTS',
    })
    await expect(store.insertCertificate(certificate('02', 'a', { fingerprint: 'fp-01' }))).rejects.toMatchObject({
      code: 'GH_CERT_EXISTS',
    })
  })

  it('revokes and supersedes certificates, keeping fields not named in the update', async () => {
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

  it('rolls back every write of a transaction that throws, in any store of the database', async () => {
    await store.insertDevice(device('keep'))
    await expect(
      store.transaction(async () => {
        await store.insertDevice(device('gone'))
        await store.insertCertificate(certificate('01', 'gone'))
        await store.appendAudit({ at: t0, actor: 'op', action: 'device.created', subject: 'gone', details: {} })
        await store.appendEvent('device.created', { deviceId: 'gone' }, t0)
        await store.setMeta('k', 'v')
        await store.limits.putTier({ key: 'gold', limits: { publishRate: 1 }, updatedAt: t0, updatedBy: 'op' })
        await store.insertDevice(device('keep'))
      }),
    ).rejects.toMatchObject({ code: 'GH_DEVICE_EXISTS' })
    expect(await store.getDevice('gone')).toBeUndefined()
    expect(await store.getCertificate('01')).toBeUndefined()
    expect(await store.listAudit()).toEqual([])
    expect(await store.eventsAfter(0, 10)).toEqual([])
    expect(await store.getMeta('k')).toBeUndefined()
    expect(await store.limits.getTier('gold')).toBeUndefined()
    expect(await store.transaction(async () => 42)).toBe(42)
  })

  it('keeps the audit log newest first, filtered by subject and action, with details', async () => {
    const a = await store.appendAudit({ at: t0, actor: 'operator', action: 'device.created', subject: 'a', details: { group: 'g' } })
    const b = await store.appendAudit({ at: t0, actor: 'broker', action: 'connect.refused', subject: 'b', details: { reason: 'revoked' } })
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
    await store.transaction(() => store.setMeta('k', 'v'))
    expect(calls).toBe(1)
    await store.appendEvent('device.revoked', { deviceId: 'a' }, t0) // a lone write commits at once
    expect(calls).toBe(2)
    off()
    await store.appendEvent('device.revoked', { deviceId: 'a' }, t0)
    expect(calls).toBe(2)
  })

  it('records when devices were last seen, keeping the later time and ignoring unknown ids', async () => {
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
    expect(await store.getMeta('crl.number')).toBeUndefined()
    await store.setMeta('crl.number', '1')
    await store.setMeta('crl.number', '2')
    expect(await store.getMeta('crl.number')).toBe('2')
  })

  it('probes a write: it commits the probe time and changes nothing else', async () => {
    await store.insertDevice(device('a'))
    await store.probeWrite(t0, 100)
    expect(await store.getMeta('health.probedAt')).toBe(t0.toISOString())
    expect((await store.listDevices()).map((d) => d.id)).toEqual(['a'])
  })
})
