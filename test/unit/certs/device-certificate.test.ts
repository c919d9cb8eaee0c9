import { KeyObject, X509Certificate as NodeX509Certificate, generateKeyPairSync, webcrypto } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import {
  bindSigner,
  certificateFingerprint,
  createCertificateAuthority,
  generateKeyObjects,
  generateKeyPair,
  issueDeviceCertificateDer,
  normalizeSerial,
  parseCertificateDer,
  parseCertificatePem,
  publicKeySha256,
  type AnyKey,
  type Clock,
  type CryptoKey,
  type IssuerKeyPair,
  type KeyAlgorithm,
  type Random,
  type X509Certificate,
} from '../../../certs/index.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { readChildren, readElement } from '../../../certs/der.ts'
import { authorityKeyIdentifier, leafValidity, randomSerial, signCertificate } from '../../../certs/issue-certificate.ts'
import { x509 } from '../../../certs/x509.ts'
import type * as X509 from '@peculiar/x509'
import { fixedClock } from '../../helpers/clock.ts'
import { seededRandom } from '../../helpers/random.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

// The DER fast path must write what the @peculiar/x509 generator wrote. The reference below is the
// generator-based issueDeviceCertificate as it was before the fast path, kept here as the oracle.
async function issueTheOldWay(
  issuer: IssuerKeyPair,
  req: { deviceId: string; publicKey: CryptoKey; validDays?: number },
  deps: { clock: Clock; random: Random },
): Promise<X509Certificate> {
  const rsa = req.publicKey.algorithm.name === 'RSASSA-PKCS1-v1_5'
  const { notBefore, notAfter } = leafValidity(issuer, req.validDays ?? 365, deps.clock)
  return signCertificate({
    signingKey: issuer.privateKey,
    issuerName: issuer.certificate.subjectName,
    subject: [{ CN: [req.deviceId] }],
    publicKey: req.publicKey,
    serial: randomSerial(deps.random),
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        rsa ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:gatehouse:device:${req.deviceId}` }], false),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
      await authorityKeyIdentifier(issuer.certificate),
    ],
  })
}

const hex = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex')
/** the TBSCertificate bytes: the first element inside the Certificate SEQUENCE */
function tbsOf(c: X509Certificate): Uint8Array {
  const raw = new Uint8Array(c.rawData)
  const tbs = readChildren(raw, readElement(raw))[0]!
  return raw.subarray(tbs.start, tbs.end)
}
const extensionsOf = (c: X509Certificate) => c.extensions.map((e) => ({ oid: e.type, critical: e.critical, value: hex(e.value) }))

/** Issues the same request both ways, with the same clock and the same serial. */
async function bothWays(
  issuer: IssuerKeyPair,
  deviceId: string,
  publicKey: CryptoKey,
  opts: { clock?: Clock; validDays?: number; asKeyObject?: boolean } = {},
) {
  const clock = opts.clock ?? fixedClock('2026-01-01T00:00:00.750Z')
  const req = { deviceId, publicKey, ...(opts.validDays !== undefined && { validDays: opts.validDays }) }
  const fastKey: AnyKey = opts.asKeyObject ? KeyObject.from(publicKey) : publicKey
  const fast = await issueDeviceCertificateDer(issuer, { ...req, publicKey: fastKey }, { clock, random: seededRandom(7) })
  const old = await issueTheOldWay(issuer, req, { clock, random: seededRandom(7) })
  return { fast, fastCert: parseCertificateDer(fast.der), old }
}

const ALGS: KeyAlgorithm[] = ['p256', 'p384', 'rsa2048']
const deps = { clock: fixedClock(), random: seededRandom(3) }
const COMBOS = ALGS.flatMap((issuerAlg) => ALGS.map((deviceAlg) => [issuerAlg, deviceAlg] as const))

describe('issueDeviceCertificateDer, against the @peculiar/x509 generator', () => {
  it.each(COMBOS)('writes the same TBSCertificate and extensions (%s issuer, %s device key)', async (issuerAlg, deviceAlg) => {
    const ca = await makeTestCa({ keyAlgorithm: issuerAlg })
    const { publicKey } = await generateKeyPair(deviceAlg)
    for (const deviceId of ['dev-1', 'dev_1.x']) {
      for (const asKeyObject of [false, true]) {
        const { fastCert, old } = await bothWays(ca.issuing, deviceId, publicKey, { asKeyObject })
        expect(extensionsOf(fastCert)).toEqual(extensionsOf(old))
        expect(fastCert.extensions.map((e) => [e.type, e.critical])).toEqual([
          ['2.5.29.19', true], // basicConstraints CA:FALSE
          ['2.5.29.15', true], // keyUsage
          ['2.5.29.37', false], // extKeyUsage clientAuth
          ['2.5.29.17', false], // subjectAltName URI
          ['2.5.29.14', false], // subjectKeyIdentifier
          ['2.5.29.35', false], // authorityKeyIdentifier
        ])
        expect(hex(tbsOf(fastCert))).toBe(hex(tbsOf(old)))
        expect(fastCert.signatureAlgorithm).toEqual(old.signatureAlgorithm)
        expect(await fastCert.verify({ publicKey: ca.issuing.certificate, signatureOnly: true })).toBe(true)
        // RSASSA-PKCS1-v1_5 is deterministic: the whole certificate is the same
        if (issuerAlg.startsWith('rsa')) expect(hex(fastCert.rawData)).toBe(hex(old.rawData))
      }
    }
  })

  it('signs with ECDSA-SHA256 / ECDSA-SHA384 / RSA-SHA256 by issuer key', async () => {
    const { publicKey } = await generateKeyPair('p256')
    const expected = {
      p256: { name: 'ECDSA', hash: 'SHA-256' },
      p384: { name: 'ECDSA', hash: 'SHA-384' },
      rsa2048: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    }
    for (const alg of ALGS) {
      const ca = await makeTestCa({ keyAlgorithm: alg })
      const { fastCert } = await bothWays(ca.issuing, 'dev-1', publicKey)
      expect(fastCert.signatureAlgorithm).toMatchObject({
        name: expected[alg as keyof typeof expected].name,
        hash: { name: expected[alg as keyof typeof expected].hash },
      })
    }
  })

  it('writes GeneralizedTime from 2050 on, as the generator did', async () => {
    const clock = fixedClock('2049-06-01T12:00:00Z')
    const ca = await createCertificateAuthority({}, { clock, random: seededRandom(3) })
    const { publicKey } = await generateKeyPair('p256')
    const { fast, fastCert, old } = await bothWays(ca.issuing, 'dev-1', publicKey, { clock })
    expect(hex(tbsOf(fastCert))).toBe(hex(tbsOf(old)))
    expect(fast.notAfter.toISOString()).toBe('2050-06-01T12:00:00.000Z')
    expect(hex(fast.der)).toContain(Buffer.from('20500601120000Z').toString('hex'))
  })

  it('caps validity at the issuer and backdates by 60 s, as the generator did', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const ca = await createCertificateAuthority({ issuingValidDays: 30 }, { clock, random: seededRandom(4) })
    const { publicKey } = await generateKeyPair('p256')
    clock.advance('2d')
    const { fast, fastCert, old } = await bothWays(ca.issuing, 'dev-1', publicKey, { clock, validDays: 365 })
    expect(hex(tbsOf(fastCert))).toBe(hex(tbsOf(old)))
    expect(fast.notAfter).toEqual(ca.issuing.certificate.notAfter)
    expect(fast.notBefore.getTime()).toBe(clock.now().getTime() - 60_000)
  })

  it('copies the issuer name byte for byte and derives the AKI from an issuer without an SKI', async () => {
    const clock = fixedClock()
    const keys = await generateKeyPair('p256')
    // a CA the generator did not make: UTF8String CN and an O, and no subjectKeyIdentifier
    const certificate = await signCertificate({
      signingKey: keys.privateKey,
      subject: [{ CN: [{ utf8String: 'Odd CA' }] }, { O: ['Acme'] }] as unknown as X509.JsonName,
      publicKey: keys.publicKey,
      serial: '01',
      notBefore: new Date('2025-01-01T00:00:00Z'),
      notAfter: new Date('2030-01-01T00:00:00Z'),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    })
    const issuer = { certificate, privateKey: keys.privateKey }
    const device = await generateKeyPair('p256')
    const { fastCert, old } = await bothWays(issuer, 'dev-1', device.publicKey, { clock })
    expect(hex(tbsOf(fastCert))).toBe(hex(tbsOf(old)))
    expect(hex(fastCert.issuerName.toArrayBuffer())).toBe(hex(certificate.subjectName.toArrayBuffer()))
    const aki = fastCert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId
    expect(aki).toBe(hex(await certificate.publicKey.getKeyIdentifier()))
    expect(await fastCert.verify({ publicKey: certificate, signatureOnly: true })).toBe(true)
  })

  it('keeps issuers apart: each certificate names and is signed by its own issuer', async () => {
    const a = await makeTestCa({ name: 'Alpha' })
    const b = await makeTestCa({ name: 'Beta' })
    const { publicKey } = await generateKeyPair('p256')
    for (const ca of [a, b, a]) {
      const { fastCert } = await bothWays(ca.issuing, 'dev-1', publicKey)
      expect(fastCert.issuer).toBe(ca.issuing.certificate.subject)
      expect(await fastCert.verify({ publicKey: ca.issuing.certificate, signatureOnly: true })).toBe(true)
    }
  })
})

describe('issueDeviceCertificateDer signing (issue 14)', () => {
  it.each(ALGS)('signs with node:crypto, not WebCrypto, when the %s CA key is a software key', async (alg) => {
    const ca = await makeTestCa({ keyAlgorithm: alg })
    const { publicKey } = await generateKeyObjects('p256')
    const webCryptoSign = vi.spyOn(webcrypto.subtle, 'sign')
    try {
      const issued = await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-node', publicKey }, deps)
      expect(webCryptoSign).not.toHaveBeenCalled()
      const cert = new NodeX509Certificate(issued.der)
      expect(cert.verify(new NodeX509Certificate(new Uint8Array(ca.issuing.certificate.rawData)).publicKey)).toBe(true)
    } finally {
      webCryptoSign.mockRestore()
    }
  })

  it('signs through the provider bound to a CA key (an HSM), in DER as X.509 wants', async () => {
    const ca = await makeTestCa({ keyAlgorithm: 'p384' })
    const calls: string[] = []
    // another provider's key: not Node's CryptoKey, so only its bound signer can sign with it
    const foreign = {
      type: 'private',
      algorithm: ca.issuing.privateKey.algorithm,
      extractable: false,
      usages: ['sign'],
    } as unknown as CryptoKey
    const privateKey = bindSigner(foreign, {
      subtle: {
        sign: async (algorithm, _key, data) => {
          calls.push(JSON.stringify(algorithm))
          return webcrypto.subtle.sign(algorithm, ca.issuing.privateKey, data)
        },
      },
    })
    const { publicKey } = await generateKeyObjects('p256')
    const issued = await issueDeviceCertificateDer({ ...ca.issuing, privateKey }, { deviceId: 'dev-hsm', publicKey }, deps)
    expect(calls).toEqual([JSON.stringify({ name: 'ECDSA', hash: 'SHA-384' })])
    const cert = new NodeX509Certificate(issued.der)
    expect(cert.verify(new NodeX509Certificate(new Uint8Array(ca.issuing.certificate.rawData)).publicKey)).toBe(true)
  })
})

describe('issueDeviceCertificateDer key checks (issue 14)', () => {
  // the getter that asks OpenSSL for a KeyObject's curve or modulus size
  const detailsGetter = () => vi.spyOn(asymmetricProto() as KeyObject, 'asymmetricKeyDetails', 'get')
  function asymmetricProto(): object {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    let proto = Object.getPrototypeOf(publicKey)
    while (proto !== null && !Object.getOwnPropertyDescriptor(proto, 'asymmetricKeyDetails')) proto = Object.getPrototypeOf(proto)
    return proto
  }

  it('does not ask OpenSSL again about a key generateKeyObjects made, and still checks any other key', async () => {
    const ca = await makeTestCa({ keyAlgorithm: 'p256' })
    const made = await generateKeyObjects('p256')
    const external = KeyObject.from((await generateKeyPair('p256')).publicKey)
    const details = detailsGetter()
    try {
      await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-made', publicKey: made.publicKey }, deps)
      expect(details).not.toHaveBeenCalled()
      await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-external', publicKey: external }, deps)
      expect(details).toHaveBeenCalled()
    } finally {
      details.mockRestore()
    }
    const { publicKey: ed25519 } = generateKeyPairSync('ed25519')
    await expect(issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-ed', publicKey: ed25519 }, deps)).rejects.toMatchObject({
      code: 'GH_KEY_ALGORITHM_UNSUPPORTED',
    })
  })
})

describe('issueDeviceCertificateDer results', () => {
  it('returns DER and PEM of one certificate, with its canonical serial, fingerprint and validity', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyObjects('p256')
    const fast = await issueDeviceCertificateDer(
      ca.issuing,
      { deviceId: 'dev-1', publicKey },
      { clock: fixedClock(), random: seededRandom(9) },
    )
    const cert = parseCertificatePem(fast.pem)
    expect(hex(cert.rawData)).toBe(hex(fast.der))
    expect(fast.serial).toBe(normalizeSerial(cert.serialNumber))
    expect(fast.fingerprint).toBe(await certificateFingerprint(cert))
    expect(fast.notBefore).toEqual(cert.notBefore)
    expect(fast.notAfter).toEqual(cert.notAfter)
    // the certified key is the one given
    expect(hex(cert.publicKey.rawData)).toBe(hex(publicKey.export({ type: 'spki', format: 'der' })))
    expect(fast.der.byteOffset).toBe(0) // its own buffer, not a view of a shared pool slab
  })

  it('gives the SHA-256 of the certified key, as publicKeySha256 reads it from the PEM, for every kind of key', async () => {
    const ca = await makeTestCa()
    const keys = [
      (await generateKeyObjects('p256')).publicKey,
      (await generateKeyPair('p384')).publicKey,
      (await generateKeyObjects('rsa2048')).publicKey,
      KeyObject.from((await generateKeyPair('p256')).publicKey),
    ]
    for (const publicKey of keys) {
      const fast = await issueDeviceCertificateDer(
        ca.issuing,
        { deviceId: 'dev-1', publicKey },
        { clock: fixedClock(), random: seededRandom(3) },
      )
      expect(fast.keySha256).toMatch(/^[0-9a-f]{64}$/)
      expect(fast.keySha256).toBe(publicKeySha256(fast.pem))
    }
  })

  it('drops leading zeros from the serial string (a serial whose first byte is 0x01)', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('p256')
    const zeros: Random = { bytes: (n) => new Uint8Array(n) }
    const fast = await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-1', publicKey }, { clock: fixedClock(), random: zeros })
    expect(fast.serial).toBe(`1${'00'.repeat(15)}`)
    expect(parseCertificateDer(fast.der).serialNumber).toBe(`01${'00'.repeat(15)}`)
  })

  it('agrees with issueDeviceCertificate, its parsed form', async () => {
    const ca = await makeTestCa()
    const { publicKey } = await generateKeyPair('p256')
    const deps = () => ({ clock: fixedClock(), random: seededRandom(5) })
    const parsed = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey }, deps())
    const fast = await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-1', publicKey }, deps())
    expect(hex(tbsOf(parsed))).toBe(hex(tbsOf(parseCertificateDer(fast.der))))
  })

  it.each([
    ['fail/private-key-object', () => generateKeyObjects('p256').then((k) => k.privateKey), 'GH_KEY_INVALID'],
    ['fail/ed25519-key-object', async () => generateKeyPairSync('ed25519').publicKey, 'GH_KEY_ALGORITHM_UNSUPPORTED'],
    ['fail/p521-key-object', async () => generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey, 'GH_KEY_ALGORITHM_UNSUPPORTED'],
  ])('%s', async (_name, key, code) => {
    const ca = await makeTestCa()
    const publicKey = await key()
    await expect(
      issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-1', publicKey }, { clock: fixedClock(), random: seededRandom(1) }),
    ).rejects.toMatchObject({ code })
  })

  it('refuses to issue from an expired issuer (GH_CA_ISSUER_EXPIRED)', async () => {
    const ca = await createCertificateAuthority({ issuingValidDays: 30 }, { clock: fixedClock(), random: seededRandom(2) })
    const { publicKey } = await generateKeyObjects('p256')
    const clock = fixedClock()
    clock.advance('31d')
    await expect(
      issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev-1', publicKey }, { clock, random: seededRandom(1) }),
    ).rejects.toMatchObject({
      code: 'GH_CA_ISSUER_EXPIRED',
    })
  })
})
