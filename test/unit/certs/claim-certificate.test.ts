import { describe, expect, it } from 'vitest'
import { cryptoRandom, generateKeyPair, identityFromCertificate, issueClaimCertificate, parseCertificatePem } from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

describe('issueClaimCertificate', () => {
  it('issues CN claim:<id>, clientAuth only, not a CA, signed by the issuing CA', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const keys = await generateKeyPair('p256')
    const cert = await issueClaimCertificate(
      ca.issuing,
      { claimId: 'pumps-abcdefgh', publicKey: keys.publicKey, notAfter: new Date('2026-04-07T00:00:00Z') },
      { clock, random: cryptoRandom },
    )
    const parsed = parseCertificatePem(cert.pem)
    expect(parsed.subject).toBe('CN=claim:pumps-abcdefgh')
    expect(await parsed.verify({ publicKey: ca.issuing.certificate.publicKey, date: clock.now() })).toBe(true)
    expect(parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth])
    expect(parsed.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false)
    expect(cert.notBefore.toISOString()).toBe('2026-02-28T23:59:00.000Z')
    expect(cert.notAfter.toISOString()).toBe('2026-04-07T00:00:00.000Z')
    const identity = await identityFromCertificate(parsed)
    expect(identity).toMatchObject({ deviceId: null, serial: cert.serial, fingerprint: cert.fingerprint })
  })

  it('caps notAfter at the issuer and refuses a bad claim id', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const keys = await generateKeyPair('p256')
    const far = await issueClaimCertificate(
      ca.issuing,
      { claimId: 'clm-abcdefghij', publicKey: keys.publicKey, notAfter: new Date('2099-01-01T00:00:00Z') },
      { clock, random: cryptoRandom },
    )
    expect(far.notAfter.getTime()).toBe(Math.floor(ca.issuing.certificate.notAfter.getTime() / 1000) * 1000)
    await expect(
      issueClaimCertificate(
        ca.issuing,
        { claimId: 'Bad:Id', publicKey: keys.publicKey, notAfter: new Date('2026-04-01T00:00:00Z') },
        { clock, random: cryptoRandom },
      ),
    ).rejects.toMatchObject({ code: 'GH_CLAIM_ID_INVALID' })
  })
})
