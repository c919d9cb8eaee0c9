import { createPrivateKey, createPublicKey } from 'node:crypto'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cryptoRandom, generateKeyPair, identityFromCertificate, parseCertificateDer, parseCertificatePem } from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import { createChangeFeed, createRegistryDirectory } from '../../../provisioning/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { InMemoryRegistryStore } from '../../../provisioning/store/in-memory-registry-store.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const log = pino({ level: 'silent' })

async function setup(options: { renewOverlapHours?: number } = {}) {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  const store = new InMemoryRegistryStore()
  const ca = await makeTestCa()
  const authority = createDeviceAuthority({ store, ca, clock, random: cryptoRandom, log }, { validDays: 30, ...options })
  const feed = await createChangeFeed({ store, clock, log })
  const directory = createRegistryDirectory({ store, feed, clock, log })
  const events: string[] = []
  feed.onEvent((e) => events.push(`${e.type}:${'deviceId' in e ? e.deviceId : ''}`))
  return { clock, store, ca, authority, feed, directory, events }
}

async function csrFor(cn: string): Promise<string> {
  const keys = await generateKeyPair('p256')
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${cn}`,
    keys: keys as unknown as import('node:crypto').webcrypto.CryptoKeyPair,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  })
  return csr.toString('pem')
}

describe('DeviceAuthority', () => {
  it('creates a device with its certificate, one audit entry and its events in one transaction', async () => {
    const { authority, store, feed, events } = await setup()
    const issued = await authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'operator:test')
    expect(issued.privateKey?.pem).toContain('BEGIN PRIVATE KEY')
    expect(await store.getDevice('pump-1')).toMatchObject({ group: 'pumps', tier: 'standard', status: 'active' })
    expect(await store.listCertificates('pump-1')).toEqual([
      expect.objectContaining({ serial: issued.serial, fingerprint: issued.fingerprint, status: 'active' }),
    ])
    expect(await store.listAudit()).toEqual([
      expect.objectContaining({ actor: 'operator:test', action: 'device.created', subject: 'pump-1' }),
    ])
    await feed.poll()
    expect(events).toEqual(['device.created:pump-1', 'certificate.issued:pump-1'])
  })

  it('hands out a key that belongs to the certificate, and records the certificate as issued', async () => {
    const { authority, store, ca } = await setup()
    for (const keyAlgorithm of ['p256', 'p384', 'rsa2048'] as const) {
      const clock = fixedClock('2026-03-01T00:00:00Z')
      const own = createDeviceAuthority(
        { store: new InMemoryRegistryStore(), ca, clock, random: cryptoRandom, log },
        { keyAlgorithm, validDays: 30 },
      )
      const issued = await own.createDevice({ id: `k-${keyAlgorithm}` }, 'op')
      const cert = parseCertificateDer(issued.certificateDer)
      expect(parseCertificatePem(issued.certificatePem).rawData).toEqual(cert.rawData)
      expect(await cert.verify({ publicKey: ca.issuing.certificate, signatureOnly: true })).toBe(true)
      const keyFromPem = createPublicKey(createPrivateKey(issued.privateKey!.pem)).export({ type: 'spki', format: 'der' })
      const keyFromPkcs8 = createPublicKey(
        createPrivateKey({ key: Buffer.from(issued.privateKey!.pkcs8), format: 'der', type: 'pkcs8' }),
      ).export({ type: 'spki', format: 'der' })
      expect(new Uint8Array(keyFromPem)).toEqual(new Uint8Array(cert.publicKey.rawData))
      expect(new Uint8Array(keyFromPkcs8)).toEqual(new Uint8Array(cert.publicKey.rawData))
      const identity = await identityFromCertificate(cert)
      expect(issued).toMatchObject({
        serial: identity.serial,
        fingerprint: identity.fingerprint,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
      })
      expect(issued.notAfter.getTime() - clock.now().getTime()).toBe(30 * 86_400_000)
    }
    const issued = await authority.createDevice({ id: 'rec-1' }, 'op')
    expect(await store.getCertificate(issued.serial)).toMatchObject({
      deviceId: 'rec-1',
      fingerprint: issued.fingerprint,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      pem: issued.certificatePem,
      status: 'active',
    })
  })

  it('refuses an existing id and an invalid id, and changes nothing', async () => {
    const { authority, store } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    await expect(authority.createDevice({ id: 'a' }, 'op')).rejects.toMatchObject({ code: 'GH_DEVICE_EXISTS' })
    for (const bad of ['a/b', 'x+', '#', '', 'x'.repeat(65), '..']) {
      await expect(authority.createDevice({ id: bad }, 'op')).rejects.toMatchObject({ code: 'GH_DEVICE_ID_INVALID' })
    }
    expect(await store.countDevices()).toBe(1)
    expect(await store.listAudit()).toHaveLength(1)
  })

  it('signs a CSR without ever holding the private key, and refuses a CSR for another id', async () => {
    const { authority, store } = await setup()
    const issued = await authority.createDevice({ id: 'cam-1', csr: await csrFor('cam-1') }, 'op')
    expect(issued.privateKey).toBeUndefined()
    await expect(authority.createDevice({ id: 'cam-2', csr: await csrFor('cam-3') }, 'op')).rejects.toMatchObject({
      code: 'GH_CSR_CN_MISMATCH',
    })
    expect(await store.getDevice('cam-2')).toBeUndefined()
  })

  it('registers nothing until a prepared device is committed', async () => {
    const { authority, store } = await setup()
    const prepared = await authority.prepareDevice({ id: 'later' }, 'op')
    expect(await store.getDevice('later')).toBeUndefined()
    await prepared.commit()
    expect((await store.getDevice('later'))?.status).toBe('active')
  })

  it('creates a batch of N devices in one commit, and refuses a batch that overlaps existing ids', async () => {
    const { authority, store } = await setup()
    const progress: number[] = []
    const batch = await authority.prepareBatch({ count: 25, prefix: 'sensor-' }, 'op', (done) => progress.push(done))
    expect(await store.countDevices()).toBe(0)
    await batch.commit()
    expect(await store.countDevices()).toBe(25)
    expect((await store.listDevices({ limit: 2 })).map((d) => d.id)).toEqual(['sensor-0001', 'sensor-0002'])
    expect(progress.at(-1)).toBe(25)
    await expect(authority.prepareBatch({ count: 5, prefix: 'sensor-', start: 24 }, 'op')).rejects.toMatchObject({
      code: 'GH_DEVICE_EXISTS',
    })
    await expect(authority.prepareBatch({ count: 0, prefix: 'x' }, 'op')).rejects.toMatchObject({ code: 'GH_BATCH_INVALID' })
    await expect(authority.prepareBatch({ count: 2, prefix: 'bad/' }, 'op')).rejects.toMatchObject({ code: 'GH_DEVICE_ID_INVALID' })
    expect(await store.countDevices()).toBe(25)
  })

  it('issues a batch in parallel whose every certificate verifies, names its device and holds its own key', async () => {
    const { authority, ca } = await setup()
    const batch = await authority.prepareBatch({ count: 100, prefix: 'par-' }, 'op')
    expect(new Set(batch.issued.map((i) => i.serial)).size).toBe(100)
    expect(new Set(batch.issued.map((i) => i.fingerprint)).size).toBe(100)
    for (const issued of batch.issued) {
      const cert = parseCertificateDer(issued.certificateDer)
      expect(cert.subject).toBe(`CN=${issued.deviceId}`)
      expect(await cert.verify({ publicKey: ca.issuing.certificate, signatureOnly: true })).toBe(true)
      const key = createPublicKey(createPrivateKey(issued.privateKey!.pem)).export({ type: 'spki', format: 'der' })
      expect(new Uint8Array(key)).toEqual(new Uint8Array(cert.publicKey.rawData))
    }
  })

  it('reads each id of a batch once and looks up no generated key, while a CSR key and a taken id are still refused (issue 14)', async () => {
    const reads = { getDevice: 0, certificatesWithKey: 0 }
    class CountingStore extends InMemoryRegistryStore {
      override getDevice(id: string) {
        reads.getDevice++
        return super.getDevice(id)
      }
      override certificatesWithKey(keySha256: string) {
        reads.certificatesWithKey++
        return super.certificatesWithKey(keySha256)
      }
    }
    const store = new CountingStore()
    const authority = createDeviceAuthority(
      { store, ca: await makeTestCa(), clock: fixedClock(), random: cryptoRandom, log },
      { validDays: 30 },
    )
    await (await authority.prepareBatch({ count: 4, prefix: 'b-' }, 'op')).commit()
    expect(reads).toEqual({ getDevice: 4, certificatesWithKey: 0 })
    expect(await store.countDevices()).toBe(4)
    // an id taken after the batch looked it up is refused at its commit, which registers none of the batch
    const late = await authority.prepareBatch({ count: 2, prefix: 'late-' }, 'op')
    await authority.createDevice({ id: 'late-0002' }, 'op')
    await expect(late.commit()).rejects.toMatchObject({ code: 'GH_DEVICE_EXISTS' })
    expect(await store.getDevice('late-0001')).toBeUndefined()
    // a key from a CSR is looked up, at issuing and again in the commit
    const csr = await csrFor('cam-1')
    reads.certificatesWithKey = 0
    await authority.createDevice({ id: 'cam-1', csr }, 'op')
    expect(reads.certificatesWithKey).toBe(2)
  })

  it('revokes every certificate of a device permanently and lists them in a fresh CRL', async () => {
    const { authority, store } = await setup()
    const issued = await authority.createDevice({ id: 'a' }, 'op')
    const { revokedSerials } = await authority.revokeDevice('a', 'keyCompromise', 'op')
    expect(revokedSerials).toEqual([issued.serial])
    expect(await store.getCertificate(issued.serial)).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' })
    await expect(authority.enableDevice('a', 'op')).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_REVOKED' }))
    await expect(authority.renewDevice('a', {}, 'op')).rejects.toMatchObject({ code: 'GH_DEVICE_REVOKED' })
    const crl = await authority.currentCrl()
    expect(crl.entries).toBe(1)
    const parsed = new x509.X509Crl(crl.pem)
    expect(parsed.entries.map((e) => e.serialNumber.toLowerCase().replace(/^0+/, ''))).toEqual([issued.serial])
  })

  it('reissues the CRL half-way to nextUpdate, with a higher number', async () => {
    const { authority, clock } = await setup()
    const first = await authority.currentCrl()
    expect((await authority.currentCrl()).crlNumber).toBe(first.crlNumber)
    clock.advance('4d')
    const second = await authority.currentCrl()
    expect(second.crlNumber).toBeGreaterThan(first.crlNumber)
    expect(second.nextUpdate.getTime()).toBeGreaterThan(first.nextUpdate.getTime())
  })

  it('disables and enables a device, refusing a no-op change', async () => {
    const { authority } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    expect((await authority.disableDevice('a', 'op')).status).toBe('disabled')
    await expect(authority.disableDevice('a', 'op')).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_STATE' }))
    expect((await authority.enableDevice('a', 'op')).status).toBe('active')
    await expect(authority.disableDevice('ghost', 'op')).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_NOT_FOUND' }))
  })
})

describe('the registry directory (the broker lookup)', () => {
  it('answers active for a current certificate, and refused with the reason otherwise', async () => {
    const { authority, directory, feed, clock } = await setup({ renewOverlapHours: 1 })
    const a = await authority.createDevice({ id: 'a', tier: 'premium' }, 'op')
    const idA = await identityFromCertificate(a.certificateDer)
    expect(await directory.lookup(idA)).toEqual({
      kind: 'active',
      deviceId: 'a',
      tier: 'premium',
      group: null,
      serial: a.serial,
      validUntil: a.notAfter,
    })

    await authority.disableDevice('a', 'op')
    await feed.poll()
    expect(await directory.lookup(idA)).toMatchObject({ kind: 'refused', reason: 'disabled' })
    await authority.enableDevice('a', 'op')
    await feed.poll()

    const renewed = await authority.renewDevice('a', {}, 'op')
    await feed.poll()
    expect((await directory.lookup(idA)).kind).toBe('active') // inside the overlap
    clock.advance('61m')
    expect(await directory.lookup(idA)).toMatchObject({ kind: 'refused', reason: 'superseded' })
    const idRenewed = await identityFromCertificate(parseCertificatePem(renewed.certificatePem))
    expect((await directory.lookup(idRenewed)).kind).toBe('active')
    clock.advance('31d')
    expect(await directory.lookup(idRenewed)).toMatchObject({ kind: 'refused', reason: 'expired' })
  })

  it('sees a revocation as soon as the change feed delivers it, despite its cache', async () => {
    const { authority, directory, feed } = await setup()
    const a = await authority.createDevice({ id: 'a' }, 'op')
    const id = await identityFromCertificate(a.certificateDer)
    expect((await directory.lookup(id)).kind).toBe('active') // now cached
    await authority.revokeDevice('a', 'unspecified', 'op')
    await feed.poll()
    expect(await directory.lookup(id)).toMatchObject({ kind: 'refused', reason: 'revoked', deviceId: 'a' })
  })

  it('sees a revocation committed before the lookup without waiting for the change feed', async () => {
    const { authority, directory } = await setup()
    const a = await authority.createDevice({ id: 'a' }, 'op')
    const id = await identityFromCertificate(a.certificateDer)
    expect((await directory.lookup(id)).kind).toBe('active') // now cached
    await authority.revokeDevice('a', 'unspecified', 'op') // no feed.poll(): the lookup catches up itself
    expect(await directory.lookup(id)).toMatchObject({ kind: 'refused', reason: 'revoked', deviceId: 'a' })
  })

  it('refuses a certificate the registry never issued, naming whether the device exists', async () => {
    const { authority, directory, ca, clock } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    const keys = await generateKeyPair()
    const { issueDeviceCertificate } = await import('../../../certs/device-certificate.ts')
    const stray = await issueDeviceCertificate(ca.issuing, { deviceId: 'a', publicKey: keys.publicKey }, { clock, random: cryptoRandom })
    expect(await directory.lookup(await identityFromCertificate(stray))).toMatchObject({ kind: 'refused', reason: 'unknown-certificate' })
    const ghost = await issueDeviceCertificate(
      ca.issuing,
      { deviceId: 'ghost', publicKey: keys.publicKey },
      { clock, random: cryptoRandom },
    )
    expect(await directory.lookup(await identityFromCertificate(ghost))).toMatchObject({ kind: 'refused', reason: 'unknown-device' })
  })

  it('writes the broker audit records to the registry', async () => {
    const { directory, store } = await setup()
    directory.audit({ actor: 'broker', action: 'connect.refused', subject: 'x', details: { reason: 'revoked' } })
    expect((await store.listAudit())[0]).toMatchObject({ actor: 'broker', action: 'connect.refused', details: { reason: 'revoked' } })
  })
})
