import { describe, expect, it } from 'vitest'
import {
  createCertificateAuthority,
  cryptoRandom,
  generateKeyPair,
  issueServerCertificate,
  type X509Certificate,
} from '../../../certs/index.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { x509 } from '../../../certs/x509.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fixedRandom } from '../../helpers/random.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const DAY = 86_400_000
const T0 = '2026-01-01T00:00:00Z'
const deps = () => ({ clock: fixedClock(T0), random: cryptoRandom })

function sanOf(cert: X509Certificate) {
  return cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => n.toJSON())
}

describe('issueDeviceCertificate', () => {
  it('puts the device id in the CN and in a SAN URI, for client auth only', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'pump-7', publicKey }, deps())
    expect(cert.subject).toBe('CN=pump-7')
    expect(cert.issuer).toBe(ca.issuing.certificate.subject)
    expect(sanOf(cert)).toEqual([{ type: 'url', value: 'urn:gatehouse:device:pump-7' }])
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth])
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false, critical: true })
    const ku = cert.getExtension(x509.KeyUsagesExtension)
    expect(ku).toMatchObject({ usages: x509.KeyUsageFlags.digitalSignature, critical: true })
    expect(await cert.verify({ publicKey: ca.issuing.certificate, signatureOnly: true })).toBe(true)
  })

  it('adds keyEncipherment for an RSA key', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('rsa2048')
    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'rsa-dev', publicKey }, deps())
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    )
  })

  it('links the keys: SKI of the device key, AKI = issuing CA SKI', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey }, deps())
    const expectedSki = (await x509.SubjectKeyIdentifierExtension.create(publicKey)).keyId
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toBe(expectedSki)
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      ca.issuing.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    )
  })

  it('backdates notBefore by 60 s and ends validDays later (365 by default)', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const clock = fixedClock(T0)
    clock.advance('2d')
    const now = clock.now().getTime()
    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey }, { clock, random: cryptoRandom })
    expect(cert.notBefore.getTime()).toBe(now - 60_000)
    expect(cert.notAfter.getTime()).toBe(now + 365 * DAY)
    const short = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey, validDays: 7 }, { clock, random: cryptoRandom })
    expect(short.notAfter.getTime()).toBe(now + 7 * DAY)
  })

  it('never lets a device certificate outlive its issuer', async () => {
    const ca = await createCertificateAuthority({ issuingValidDays: 30 }, deps())
    const { publicKey } = await generateKeyPair()
    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey, validDays: 365 }, deps())
    expect(cert.notAfter).toEqual(ca.issuing.certificate.notAfter)
  })

  it('refuses to issue from an expired issuer (GH_CA_ISSUER_EXPIRED)', async () => {
    const ca = await createCertificateAuthority({ issuingValidDays: 30 }, deps())
    const { publicKey } = await generateKeyPair()
    const clock = fixedClock(T0)
    clock.advance('31d')
    await expect(
      issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey }, { clock, random: cryptoRandom }),
    ).rejects.toMatchObject({ code: 'GH_CA_ISSUER_EXPIRED' })
  })

  it('draws a positive serial of at least 64 bits, unique per certificate', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const serials = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey }, deps())
      // 16 bytes whose first byte has the DER INTEGER sign bit clear: positive, no 00 padding needed
      expect(cert.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/i)
      expect(BigInt(`0x${cert.serialNumber}`)).toBeGreaterThanOrEqual(2n ** 64n)
      serials.add(cert.serialNumber)
    }
    expect(serials.size).toBe(5)
  })

  it.each([
    ['all-ones random', 0xff, `7f${'ff'.repeat(15)}`],
    ['all-zero random', 0x00, `01${'00'.repeat(15)}`],
  ])('clears the top bit and keeps the serial nonzero (%s)', async (_name, byte, serial) => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const cert = await issueDeviceCertificate(
      ca.issuing,
      { deviceId: 'dev-1', publicKey },
      { clock: fixedClock(T0), random: fixedRandom(byte) },
    )
    expect(cert.serialNumber.toLowerCase()).toBe(serial)
  })

  it.each([
    ['fail/slash-id', { deviceId: 'a/b' }, 'GH_DEVICE_ID_INVALID'],
    ['fail/empty-id', { deviceId: '' }, 'GH_DEVICE_ID_INVALID'],
    ['fail/zero-days', { deviceId: 'dev-1', validDays: 0 }, 'GH_CERT_VALIDITY_INVALID'],
    ['fail/nan-days', { deviceId: 'dev-1', validDays: Number.NaN }, 'GH_CERT_VALIDITY_INVALID'],
  ])('%s', async (_name, req, code) => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    await expect(issueDeviceCertificate(ca.issuing, { publicKey, ...req }, deps())).rejects.toMatchObject({ code })
  })

  it('refuses a private key where the public key belongs (GH_KEY_INVALID)', async () => {
    const ca = await makeTestCa()
    const { privateKey } = await generateKeyPair()
    await expect(issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey: privateKey }, deps())).rejects.toMatchObject({
      code: 'GH_KEY_INVALID',
    })
  })
})

describe('issueServerCertificate', () => {
  it('is for server auth only, named localhost, 127.0.0.1, ::1 and each hostname', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair()
    const cert = await issueServerCertificate(
      ca.issuing,
      { publicKey, hostnames: ['mqtt.example.com', '192.168.1.10', 'LOCALHOST', 'fd00::1'] },
      deps(),
    )
    expect(cert.subject).toBe('CN=gatehouse')
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth])
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false, critical: true })
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature)
    const san = sanOf(cert) ?? []
    expect(san.map((n) => n.type)).toEqual(['dns', 'ip', 'ip', 'dns', 'ip', 'ip'])
    expect(san[0]?.value).toBe('localhost')
    expect(san[1]?.value).toBe('127.0.0.1')
    expect(san[3]?.value).toBe('mqtt.example.com')
    expect(san[4]?.value).toBe('192.168.1.10')
    expect(cert.notAfter.getTime()).toBe(Date.parse(T0) + 825 * DAY)
  })

  it('takes a common name and an RSA key (keyEncipherment added)', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('rsa2048')
    const cert = await issueServerCertificate(ca.issuing, { publicKey, commonName: 'broker-1' }, deps())
    expect(cert.subject).toBe('CN=broker-1')
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    )
  })

  it.each([['bad host'], ['-leading-dash.example'], ['a..b'], ['exa_mple.com'], ['']])(
    'refuses the hostname %j (GH_CERT_HOSTNAME_INVALID)',
    async (host) => {
      const ca = await makeTestCa()
      const { publicKey } = await generateKeyPair()
      await expect(issueServerCertificate(ca.issuing, { publicKey, hostnames: [host] }, deps())).rejects.toMatchObject({
        code: 'GH_CERT_HOSTNAME_INVALID',
      })
    },
  )
})
