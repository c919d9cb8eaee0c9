import { describe, expect, it } from 'vitest'
import { createCertificateAuthority, cryptoRandom, keyAlgorithmOf } from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import { fixedClock } from '../../helpers/clock.ts'

const DAY = 86_400_000
const T0 = '2026-01-01T00:00:00Z'

describe('createCertificateAuthority', () => {
  it('makes a self-signed root CA: CA:true and keyCertSign+cRLSign, both critical, with an SKI', async () => {
    const ca = await createCertificateAuthority({}, { clock: fixedClock(T0), random: cryptoRandom })
    const root = ca.root.certificate
    expect(root.subject).toBe('CN=Gatehouse Root CA')
    expect(root.issuer).toBe(root.subject)
    expect(await root.isSelfSigned()).toBe(true)
    const bc = root.getExtension(x509.BasicConstraintsExtension)
    expect(bc).toMatchObject({ ca: true, critical: true })
    const ku = root.getExtension(x509.KeyUsagesExtension)
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)
    expect(ku?.critical).toBe(true)
    expect(root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/)
    expect(keyAlgorithmOf(ca.root.privateKey)).toBe('p256')
  })

  it('makes an issuing CA signed by the root: pathLen 0, AKI = root SKI', async () => {
    const ca = await createCertificateAuthority({ name: 'Acme' }, { clock: fixedClock(T0), random: cryptoRandom })
    const issuing = ca.issuing.certificate
    expect(issuing.subject).toBe('CN=Acme Issuing CA')
    expect(issuing.issuer).toBe('CN=Acme Root CA')
    expect(await issuing.verify({ publicKey: ca.root.certificate, signatureOnly: true })).toBe(true)
    expect(issuing.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 0, critical: true })
    expect(issuing.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)
    const rootSki = ca.root.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
    expect(issuing.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(rootSki)
    expect(issuing.serialNumber).not.toBe(ca.root.certificate.serialNumber)
  })

  it('dates both from the clock: backdated 60 s, 3650 and 1825 days by default', async () => {
    const ca = await createCertificateAuthority({}, { clock: fixedClock(T0), random: cryptoRandom })
    const t0 = Date.parse(T0)
    for (const c of [ca.root.certificate, ca.issuing.certificate]) expect(c.notBefore.getTime()).toBe(t0 - 60_000)
    expect(ca.root.certificate.notAfter.getTime()).toBe(t0 + 3650 * DAY)
    expect(ca.issuing.certificate.notAfter.getTime()).toBe(t0 + 1825 * DAY)
  })

  it('never lets the issuing CA outlive the root', async () => {
    const ca = await createCertificateAuthority(
      { rootValidDays: 10, issuingValidDays: 20 },
      { clock: fixedClock(T0), random: cryptoRandom },
    )
    expect(ca.issuing.certificate.notAfter).toEqual(ca.root.certificate.notAfter)
  })

  it('uses the requested key algorithm for both tiers', async () => {
    const ca = await createCertificateAuthority({ keyAlgorithm: 'p384' }, { clock: fixedClock(T0), random: cryptoRandom })
    expect(keyAlgorithmOf(ca.root.privateKey)).toBe('p384')
    expect(keyAlgorithmOf(ca.issuing.privateKey)).toBe('p384')
    expect(ca.issuing.certificate.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-384' } })
  })

  it.each([
    ['fail/empty-name', { name: '' }, 'GH_CA_NAME_INVALID'],
    ['fail/long-name', { name: 'x'.repeat(54) }, 'GH_CA_NAME_INVALID'],
    ['fail/newline-name', { name: 'a\nb' }, 'GH_CA_NAME_INVALID'],
    ['fail/zero-days', { rootValidDays: 0 }, 'GH_CERT_VALIDITY_INVALID'],
    ['fail/bad-algorithm', { keyAlgorithm: 'ed25519' as never }, 'GH_KEY_ALGORITHM_UNSUPPORTED'],
  ])('%s', async (_name, opts, code) => {
    await expect(createCertificateAuthority(opts, { clock: fixedClock(T0), random: cryptoRandom })).rejects.toMatchObject({
      code,
    })
  })
})
