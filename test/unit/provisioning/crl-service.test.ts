import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cryptoRandom, issueIssuingCa, issuerKeyId, normalizeSerial, type CertificateAuthority } from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { InMemoryRegistryStore } from '../../../provisioning/store/in-memory-registry-store.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const log = pino({ level: 'silent' })

/** An authority on the test CA; rotate() swaps in a new issuing CA as `ca rotate` + reloadCa do. */
async function setup() {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  const store = new InMemoryRegistryStore()
  const before = await makeTestCa()
  const authority = createDeviceAuthority({ store, ca: before, clock, random: cryptoRandom, log }, { validDays: 30 })
  const rotate = async (): Promise<CertificateAuthority> => {
    const issuing = await issueIssuingCa(before.root, { subjectSerialNumber: 'rotated' }, { clock, random: cryptoRandom })
    const after = { root: before.root, issuing, previous: [before.issuing] }
    authority.reloadCa(after)
    return after
  }
  return { clock, store, before, authority, rotate }
}

const crlOf = (pem: string) => new x509.X509Crl(pem)

describe('CRLs per issuing CA', () => {
  it("puts a revoked certificate of the previous issuing CA on that CA's CRL, signed by it, and one of the new CA on the new CRL", async () => {
    const { authority, before, rotate } = await setup()
    const old = await authority.createDevice({ id: 'old-1' }, 'op')
    const after = await rotate()
    const fresh = await authority.createDevice({ id: 'new-1' }, 'op')
    await authority.revokeDevice('old-1', 'keyCompromise', 'op')
    await authority.revokeDevice('new-1', 'superseded', 'op')

    const [current, previous] = await authority.currentCrls()
    expect(current).toMatchObject({ issuerSerial: normalizeSerial(after.issuing.certificate.serialNumber), entries: 1 })
    expect(previous).toMatchObject({ issuerSerial: normalizeSerial(before.issuing.certificate.serialNumber), entries: 1 })
    const currentCrl = crlOf(current!.pem)
    const previousCrl = crlOf(previous!.pem)
    expect(await currentCrl.verify({ publicKey: after.issuing.certificate.publicKey })).toBe(true)
    expect(await previousCrl.verify({ publicKey: before.issuing.certificate.publicKey })).toBe(true)
    expect(currentCrl.issuer).toBe(after.issuing.certificate.subject)
    expect(previousCrl.issuer).toBe(before.issuing.certificate.subject)
    expect(previousCrl.findRevoked(old.serial)?.reason).toBe(x509.X509CrlReason.keyCompromise)
    expect(previousCrl.findRevoked(fresh.serial)).toBeNull()
    expect(currentCrl.findRevoked(fresh.serial)?.reason).toBe(x509.X509CrlReason.superseded)
    expect(currentCrl.findRevoked(old.serial)).toBeNull()
    // currentCrl() is still the current issuing CA's
    expect((await authority.currentCrl()).issuerSerial).toBe(current!.issuerSerial)
  })

  it("numbers each issuer's CRLs upwards, continuing the single-CA numbering, and reissues only what is stale", async () => {
    const { authority, store, clock, rotate } = await setup()
    await store.setMeta('crl.number', '41') // a registry from before CRLs were per issuer
    expect((await authority.currentCrl()).crlNumber).toBe(42)
    await rotate()
    const [current, previous] = await authority.currentCrls()
    expect([current!.crlNumber, previous!.crlNumber]).toEqual([42, 42])
    const again = await authority.currentCrls()
    expect(again.map((c) => c.crlNumber)).toEqual([42, 42])
    clock.advance('4d') // past half of the 7-day validity
    expect((await authority.currentCrls()).map((c) => c.crlNumber)).toEqual([43, 43])
  })

  it('issues with the new CA after reloadCa, and hands out the chain with both issuing CAs', async () => {
    const { authority, before, rotate } = await setup()
    const after = await rotate()
    const issued = await authority.createDevice({ id: 'dev-2' }, 'op')
    const cert = new x509.X509Certificate(issued.certificatePem)
    expect(cert.issuer).toBe(after.issuing.certificate.subject)
    expect(await cert.verify({ publicKey: after.issuing.certificate.publicKey, signatureOnly: true })).toBe(true)
    const chain = issued.chainPem.match(/BEGIN CERTIFICATE/g) ?? []
    expect(chain).toHaveLength(3)
    expect(authority.chainPem()).toBe(issued.chainPem)
    expect(authority.ca.issuing).toBe(after.issuing)
    expect(authority.ca.previous).toEqual([before.issuing])
  })

  it("serves each issuing CA's stored CRL by its key id, the previous one too, reissuing only at half its validity", async () => {
    const { authority, before, clock, rotate } = await setup()
    const old = await authority.createDevice({ id: 'old-2' }, 'op')
    const after = await rotate()
    await authority.revokeDevice('old-2', 'keyCompromise', 'op')
    const oldId = await issuerKeyId(before.issuing.certificate)
    const newId = await issuerKeyId(after.issuing.certificate)
    const previous = await authority.crlByKeyId(oldId)
    expect(crlOf(previous!.pem).findRevoked(old.serial)).not.toBeNull()
    expect(await crlOf(previous!.pem).verify({ publicKey: before.issuing.certificate.publicKey })).toBe(true)
    const current = await authority.crlByKeyId(newId)
    expect(await crlOf(current!.pem).verify({ publicKey: after.issuing.certificate.publicKey })).toBe(true)
    expect(Buffer.from(current!.der)).toEqual(Buffer.from(crlOf(current!.pem).rawData))
    // the same CRL for every request until half-way to nextUpdate, then one new one
    expect((await authority.crlByKeyId(newId))!.crlNumber).toBe(current!.crlNumber)
    clock.advance('4d')
    const [a, b] = await Promise.all([authority.crlByKeyId(newId), authority.crlByKeyId(newId)])
    expect([a!.crlNumber, b!.crlNumber]).toEqual([current!.crlNumber + 1, current!.crlNumber + 1])
    for (const unknown of ['ab'.repeat(20), 'AB', '', '../meta']) expect(await authority.crlByKeyId(unknown)).toBeUndefined()
  })
})
