import { describe, expect, it } from 'vitest'
import { chainPem, cryptoRandom, generateKeyPair, isIssuedBy, issueIssuingCa, parseCertificatesPem } from '../../../certs/index.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { x509 } from '../../../certs/x509.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

describe('issueIssuingCa (a rotation: a second issuing CA under the same root)', () => {
  it('is a CA signed by the root (pathLen 0, AKI = root SKI), with the root CN stem and a distinguishing subject serialNumber', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock('2026-06-01T00:00:00Z')
    const next = await issueIssuingCa(ca.root, { subjectSerialNumber: '20260601T000000Z' }, { clock, random: cryptoRandom })
    const cert = next.certificate
    expect(await cert.verify({ publicKey: ca.root.certificate, signatureOnly: true })).toBe(true)
    expect(cert.issuer).toBe(ca.root.certificate.subject)
    expect(cert.subjectName.getField('CN')).toEqual(['Gatehouse Issuing CA'])
    expect(cert.subjectName.getField('2.5.4.5')).toEqual(['20260601T000000Z'])
    expect(cert.subject).not.toBe(ca.issuing.certificate.subject)
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 0 })
    expect(cert.notAfter.getTime()).toBeLessThanOrEqual(ca.root.certificate.notAfter.getTime())
    expect(cert.notBefore).toEqual(new Date('2026-05-31T23:59:00Z'))
    expect(isIssuedBy(cert, ca.root.certificate)).toBe(true)
  })

  it('refuses when the root is not valid now', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock(new Date(ca.root.certificate.notAfter.getTime() + 1000))
    await expect(issueIssuingCa(ca.root, {}, { clock, random: cryptoRandom })).rejects.toMatchObject({ code: 'GH_CA_ISSUER_EXPIRED' })
  })

  it('refuses a subject serialNumber that is not printable', async () => {
    const ca = await makeTestCa()
    await expect(
      issueIssuingCa(ca.root, { subjectSerialNumber: 'a\u0000b' }, { clock: fixedClock(), random: cryptoRandom }),
    ).rejects.toMatchObject({ code: 'GH_CA_NAME_INVALID' })
  })
})

describe('isIssuedBy', () => {
  it('tells the certificates of two issuing CAs under one root apart', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock()
    const deps = { clock, random: cryptoRandom }
    const other = await issueIssuingCa(ca.root, { subjectSerialNumber: '2' }, deps)
    const { publicKey } = await generateKeyPair()
    const fromFirst = await issueDeviceCertificate(ca.issuing, { deviceId: 'd-1', publicKey }, deps)
    const fromSecond = await issueDeviceCertificate(other, { deviceId: 'd-2', publicKey }, deps)
    expect([isIssuedBy(fromFirst, ca.issuing.certificate), isIssuedBy(fromFirst, other.certificate)]).toEqual([true, false])
    expect([isIssuedBy(fromSecond, ca.issuing.certificate), isIssuedBy(fromSecond, other.certificate)]).toEqual([false, true])
  })
})

describe('chainPem with previous issuing CAs', () => {
  it('lists the current issuing CA, then the previous ones, then the root', async () => {
    const ca = await makeTestCa()
    const next = await issueIssuingCa(ca.root, { subjectSerialNumber: '2' }, { clock: fixedClock(), random: cryptoRandom })
    const chain = parseCertificatesPem(chainPem({ root: ca.root, issuing: next, previous: [ca.issuing] }))
    expect(chain.map((c) => c.serialNumber)).toEqual([next, ca.issuing, ca.root].map((p) => p.certificate.serialNumber))
    expect(parseCertificatesPem(chainPem(ca))).toHaveLength(2)
  })
})
