import { createRequire } from 'node:module'
import type * as X509 from '@peculiar/x509'
import forge from 'node-forge'
import { describe, expect, it } from 'vitest'
import {
  certificateToPem,
  chainPem,
  cryptoRandom,
  exportPrivateKeyPkcs8,
  generateKeyPair,
  parseCertificateDer,
  parseCertificatePem,
  parseCertificatesPem,
  toPkcs12,
  type KeyAlgorithm,
} from '../../../certs/index.ts'
import { certificateToDer } from '../../../certs/bundle.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { signCertificate } from '../../../certs/issue-certificate.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { seededRandom } from '../../helpers/random.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

async function deviceBundle(alg: KeyAlgorithm) {
  const ca = await makeTestCa()
  const keys = await generateKeyPair(alg)
  const cert = await issueDeviceCertificate(
    ca.issuing,
    { deviceId: 'dev-1', publicKey: keys.publicKey },
    { clock: fixedClock(), random: cryptoRandom },
  )
  return { ca, keys, cert, pkcs8: await exportPrivateKeyPkcs8(keys.privateKey) }
}

function openPkcs12(p12: Uint8Array, password: string) {
  const pfx = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(Buffer.from(p12).toString('binary')), password)
  const keyBags = pfx.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!] ?? []
  const certBags = pfx.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? []
  return { keyBags, certBags }
}

describe('PEM and DER', () => {
  it('round-trips a certificate through PEM and DER', async () => {
    const ca = await makeTestCa()
    const pem = certificateToPem(ca.root.certificate)
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/)
    expect(parseCertificatePem(pem).rawData).toEqual(ca.root.certificate.rawData)
    expect(parseCertificateDer(certificateToDer(ca.root.certificate)).subject).toBe(ca.root.certificate.subject)
  })

  it('writes the chain to trust as issuing CA then root', async () => {
    const ca = await makeTestCa()
    const pem = chainPem(ca)
    expect(pem).toBe(certificateToPem(ca.issuing.certificate) + certificateToPem(ca.root.certificate))
    expect(chainPem([ca.issuing.certificate, ca.root.certificate])).toBe(pem)
    expect(parseCertificatesPem(pem).map((c) => c.subject)).toEqual(['CN=Gatehouse Issuing CA', 'CN=Gatehouse Root CA'])
  })

  it.each([
    ['fail/garbage', 'hello'],
    ['fail/empty', ''],
    ['fail/bad-body', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
    ['fail/key-not-cert', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
  ])('%s is GH_CERT_INVALID', (_name, pem) => {
    expect(() => parseCertificatePem(pem)).toThrow(expect.objectContaining({ code: 'GH_CERT_INVALID' }))
  })

  it('wants exactly one certificate in parseCertificatePem', async () => {
    const ca = await makeTestCa()
    expect(() => parseCertificatePem(chainPem(ca))).toThrow(expect.objectContaining({ code: 'GH_CERT_INVALID' }))
  })
})

describe('toPkcs12', () => {
  it.each(['p256', 'rsa2048'] as const)('holds the %s key, its certificate and the chain, under the password', async (alg) => {
    const { ca, cert, pkcs8 } = await deviceBundle(alg)
    const p12 = toPkcs12({
      privateKeyPkcs8: pkcs8,
      certificate: cert,
      chain: [ca.issuing.certificate, ca.root.certificate],
      password: 'pw-123',
      friendlyName: 'dev-1',
    })
    const { keyBags, certBags } = openPkcs12(p12, 'pw-123')
    expect(keyBags).toHaveLength(1)
    const keyDer = keyBags[0]?.key
      ? forge.asn1.toDer(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(keyBags[0].key)))
      : forge.asn1.toDer(keyBags[0]!.asn1!)
    if (alg === 'p256') expect(Buffer.from(keyDer.getBytes(), 'binary')).toEqual(Buffer.from(pkcs8))
    expect(keyBags[0]?.attributes.friendlyName).toEqual(['dev-1'])
    expect(certBags).toHaveLength(3)
    const leaf = certBags.find((b) => b.attributes.localKeyId !== undefined)
    expect(leaf?.attributes.localKeyId).toEqual(keyBags[0]?.attributes.localKeyId)
    const leafAsn1 = leaf?.cert ? forge.pki.certificateToAsn1(leaf.cert) : leaf?.asn1
    expect(Buffer.from(forge.asn1.toDer(leafAsn1!).getBytes(), 'binary')).toEqual(Buffer.from(cert.rawData))
  })

  it('cannot be opened with a wrong password', async () => {
    const { ca, cert, pkcs8 } = await deviceBundle('p256')
    const p12 = toPkcs12({ privateKeyPkcs8: pkcs8, certificate: cert, chain: [ca.issuing.certificate], password: 'right' })
    expect(() => openPkcs12(p12, 'wrong')).toThrow()
  })

  it('refuses a key that is not the certificate key (GH_BUNDLE_KEY_MISMATCH)', async () => {
    const { ca, cert } = await deviceBundle('p256')
    const other = await exportPrivateKeyPkcs8((await generateKeyPair()).privateKey)
    expect(() => toPkcs12({ privateKeyPkcs8: other, certificate: cert, chain: [ca.root.certificate], password: 'pw' })).toThrow(
      expect.objectContaining({ code: 'GH_BUNDLE_KEY_MISMATCH' }),
    )
    expect(() => toPkcs12({ privateKeyPkcs8: new Uint8Array([1, 2, 3]), certificate: cert, chain: [], password: 'pw' })).toThrow(
      expect.objectContaining({ code: 'GH_KEY_INVALID' }),
    )
  })
})

describe('parseCertificatesPem with defer (issue 14)', () => {
  it('answers serial number and validity as the parsed certificate does, without parsing it in depth', async () => {
    const ca = await makeTestCa({ keyAlgorithm: 'p256' })
    const { publicKey } = await generateKeyPair('p256')
    // serials with the top bit set (a leading 00 in DER) and without; a UTCTime and a GeneralizedTime (2050 on) validity
    const certs = [ca.root.certificate, ca.issuing.certificate]
    for (const [seed, at] of [
      [1, '2026-01-01T00:00:00Z'],
      [2, '2049-12-01T00:00:00Z'],
      [7, '2030-06-15T12:34:56Z'],
    ] as const) {
      const caAt = await makeTestCa({ keyAlgorithm: 'p256', clock: fixedClock(at), random: seededRandom(seed), cache: false })
      certs.push(caAt.root.certificate, caAt.issuing.certificate)
      certs.push(
        await issueDeviceCertificate(
          caAt.issuing,
          { deviceId: `dev-${seed}`, publicKey },
          { clock: fixedClock(at), random: seededRandom(seed) },
        ),
      )
    }
    // a serial whose top bit is set, as another CA may write it: DER puts a 00 byte in front
    const keys = await generateKeyPair('p256')
    certs.push(
      await signCertificate({
        signingKey: keys.privateKey,
        subject: [{ CN: ['top-bit'] }],
        publicKey: keys.publicKey,
        serial: '8a00000000000000000000000000ff01',
        notBefore: new Date('2026-01-01T00:00:00Z'),
        notAfter: new Date('2027-01-01T00:00:00Z'),
        extensions: [],
      }),
    )
    expect(certs.some((c) => c.serialNumber.startsWith('8a') && Buffer.from(c.rawData).includes(Buffer.from('0211008a', 'hex')))).toBe(true)
    expect(certs.some((c) => c.notAfter.getUTCFullYear() >= 2050)).toBe(true)
    // counts the certificates @peculiar/x509 parses (the CommonJS instance certs/x509.ts loads)
    const lib = createRequire(import.meta.url)('@peculiar/x509') as typeof X509
    const Original = lib.X509Certificate
    let parses = 0
    lib.X509Certificate = class extends Original {
      constructor(...args: ConstructorParameters<typeof Original>) {
        super(...args)
        parses++
      }
    }
    try {
      for (const cert of certs) {
        const [deferred] = parseCertificatesPem(certificateToPem(cert), { defer: true })
        const read = { serial: deferred?.serialNumber, notBefore: deferred?.notBefore, notAfter: deferred?.notAfter }
        expect(read).toEqual({ serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter })
        expect(parses).toBe(0)
        // anything else parses it, once
        expect(deferred?.subject).toBe(cert.subject)
        expect(deferred?.serialNumber).toBe(cert.serialNumber)
        expect(parses).toBe(1)
        parses = 0
      }
    } finally {
      lib.X509Certificate = Original
    }
  })
})
