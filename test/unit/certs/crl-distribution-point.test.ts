import { describe, expect, it } from 'vitest'
import {
  crlUrl,
  generateKeyPair,
  issueClaimCertificate,
  issueDeviceCertificateDer,
  issuerKeyId,
  parseCertificateDer,
} from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { seededRandom } from '../../helpers/random.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const deps = { clock: fixedClock('2026-03-01T00:00:00Z'), random: seededRandom(7) }

function urlsOf(der: ArrayBuffer | Uint8Array): string[] | null {
  const ext = new x509.X509Certificate(der).getExtension(x509.CRLDistributionPointsExtension)
  if (ext === null) return null
  expect(ext.critical).toBe(false)
  return ext.distributionPoints.flatMap((p) => p.distributionPoint?.fullName?.map((n) => n.uniformResourceIdentifier ?? '') ?? [])
}

describe('CRL Distribution Points', () => {
  it("names the issuer's CRL by its subject key identifier, under the base URL without a doubled slash", async () => {
    const ca = await makeTestCa()
    const keyId = await issuerKeyId(ca.issuing.certificate)
    const ski = ca.issuing.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
    expect(keyId).toBe(ski?.toLowerCase())
    expect(crlUrl('https://pki.example.com/gh/', keyId)).toBe(`https://pki.example.com/gh/crl/${keyId}.crl`)
    expect(crlUrl('http://10.0.0.5:8080', keyId)).toBe(`http://10.0.0.5:8080/crl/${keyId}.crl`)
  })

  it('is in a device certificate when a CRL URL is given, and absent without one', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('p256')
    const url = 'https://pki.example.com/crl/abcd.crl'
    const withUrl = await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-1', publicKey, crlUrl: url }, deps)
    expect(urlsOf(withUrl.der)).toEqual([url])
    const parsed = parseCertificateDer(withUrl.der)
    expect(await parsed.verify({ publicKey: ca.issuing.certificate.publicKey, signatureOnly: true })).toBe(true)
    const without = await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-1', publicKey }, deps)
    expect(urlsOf(without.der)).toBeNull()
  })

  it('is in a claim certificate when a CRL URL is given, and absent without one', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('p256')
    const notAfter = new Date('2026-04-01T00:00:00Z')
    const url = 'http://pki.example.com/crl/abcd.crl'
    const withUrl = await issueClaimCertificate(ca.issuing, { claimId: 'pumps-abc123', publicKey, notAfter, crlUrl: url }, deps)
    expect(urlsOf(withUrl.der)).toEqual([url])
    const without = await issueClaimCertificate(ca.issuing, { claimId: 'pumps-abc123', publicKey, notAfter }, deps)
    expect(urlsOf(without.der)).toBeNull()
  })
})
