import { createHash, X509Certificate as NodeX509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  certificateFingerprint,
  cryptoRandom,
  generateKeyPair,
  identityFromCertificate,
  identityFromPeerCertificate,
  issueServerCertificate,
  normalizeSerial,
  publicKeySha256,
  certificateToPem,
  type X509Certificate,
} from '../../../certs/index.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { normalizeFingerprint, type PeerCertificateLike } from '../../../certs/peer-identity.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fixedRandom } from '../../helpers/random.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

/** What Node's tls getPeerCertificate() reports, built from Node's own parser of the same DER. */
function peerShape(cert: X509Certificate, cn?: string | string[]): PeerCertificateLike {
  const n = new NodeX509Certificate(Buffer.from(cert.rawData))
  const subjectCn = cn ?? /(?:^|\n)CN=([^\n]*)/.exec(n.subject)?.[1]
  return {
    ...(subjectCn !== undefined && { subject: { CN: subjectCn } }),
    serialNumber: n.serialNumber,
    fingerprint256: n.fingerprint256,
    valid_from: n.validFrom,
    valid_to: n.validTo,
  }
}

async function deviceCert(deviceId = 'dev-1', random = cryptoRandom) {
  const ca = await makeTestCa()
  const { publicKey } = await generateKeyPair()
  return issueDeviceCertificate(ca.issuing, { deviceId, publicKey }, { clock: fixedClock(), random })
}

describe('peer identity', () => {
  it('reads CN, device id, serial, fingerprint and validity from a certificate', async () => {
    const cert = await deviceCert('pump-7')
    const id = await identityFromCertificate(cert)
    expect(id).toMatchObject({ commonName: 'pump-7', deviceId: 'pump-7', notBefore: cert.notBefore, notAfter: cert.notAfter })
    expect(id.serial).toMatch(/^[1-9a-f][0-9a-f]*$/)
    expect(id.fingerprint).toMatch(/^[0-9a-f]{64}$/)
    expect(id.fingerprint).toBe(await certificateFingerprint(cert))
    expect(await identityFromCertificate(new Uint8Array(cert.rawData))).toEqual(id)
  })

  it('agrees with identityFromPeerCertificate on the same certificate', async () => {
    for (const cert of [await deviceCert(), await deviceCert('dev-2', fixedRandom(0))]) {
      expect(identityFromPeerCertificate(peerShape(cert))).toEqual(await identityFromCertificate(cert))
    }
  })

  it('has no device id when the CN is not a valid device id', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const cert = await issueServerCertificate(
      ca.issuing,
      { publicKey, commonName: 'my gateway' },
      { clock: fixedClock(), random: cryptoRandom },
    )
    const id = await identityFromCertificate(cert)
    expect(id).toMatchObject({ commonName: 'my gateway', deviceId: null })
    expect(identityFromPeerCertificate(peerShape(cert))).toEqual(id)
  })

  it('has no device id when the subject has several CNs or none', async () => {
    const cert = await deviceCert()
    expect(identityFromPeerCertificate(peerShape(cert, ['dev-1', 'admin']))).toMatchObject({ commonName: 'dev-1', deviceId: null })
    const { subject: _omit, ...noSubject } = peerShape(cert)
    expect(identityFromPeerCertificate(noSubject)).toMatchObject({ commonName: null, deviceId: null })
  })

  it('refuses unreadable input with coded errors', async () => {
    const shape = peerShape(await deviceCert())
    expect(() => identityFromPeerCertificate({ ...shape, valid_to: 'soon' })).toThrow(expect.objectContaining({ code: 'GH_CERT_INVALID' }))
    expect(() => identityFromPeerCertificate({ ...shape, serialNumber: 'zz' })).toThrow(
      expect.objectContaining({ code: 'GH_SERIAL_INVALID' }),
    )
    await expect(identityFromCertificate(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ code: 'GH_CERT_INVALID' })
  })
})

describe('publicKeySha256', () => {
  it('hashes the SubjectPublicKeyInfo DER the full parser finds, for a device and an RSA server certificate', async () => {
    const device = await deviceCert()
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('rsa2048')
    const server = await issueServerCertificate(
      ca.issuing,
      { hostnames: ['localhost'], publicKey },
      { clock: fixedClock(), random: cryptoRandom },
    )
    for (const cert of [device, server]) {
      const expected = createHash('sha256').update(new Uint8Array(cert.publicKey.rawData)).digest('hex')
      expect(publicKeySha256(`${certificateToPem(cert)}\n${certificateToPem(cert)}`)).toBe(expected)
    }
  })

  it('refuses text that is not a PEM certificate with GH_CERT_INVALID', () => {
    expect(() => publicKeySha256('hello')).toThrow(expect.objectContaining({ code: 'GH_CERT_INVALID' }))
    expect(() => publicKeySha256('-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----')).toThrow(
      expect.objectContaining({ code: 'GH_CERT_INVALID' }),
    )
  })
})

describe('normalizeSerial', () => {
  it.each([
    ['ok/upper', 'ABCDEF', 'abcdef'],
    ['ok/colons', '0a:1B:2c', 'a1b2c'],
    ['ok/leading-zeros', '0000ff', 'ff'],
    ['ok/zero', '00', '0'],
  ])('%s', (_name, input, out) => {
    expect(normalizeSerial(input)).toBe(out)
  })

  it.each([
    ['fail/empty', ''],
    ['fail/not-hex', 'xyz'],
    ['fail/spaces-only', '  '],
  ])('%s', (_name, input) => {
    expect(() => normalizeSerial(input)).toThrow(expect.objectContaining({ code: 'GH_SERIAL_INVALID' }))
  })
})

describe('normalizeFingerprint', () => {
  it('lowercases and drops colons', () => {
    const hex = 'AB'.repeat(32)
    expect(normalizeFingerprint(hex.match(/../g)!.join(':'))).toBe('ab'.repeat(32))
  })

  it.each([
    ['fail/sha1-length', 'ab'.repeat(20)],
    ['fail/not-hex', 'zz'.repeat(32)],
  ])('%s', (_name, input) => {
    expect(() => normalizeFingerprint(input)).toThrow(expect.objectContaining({ code: 'GH_FINGERPRINT_INVALID' }))
  })
})
