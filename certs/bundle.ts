import { createHash, createPrivateKey, createPublicKey, type KeyObject, X509Certificate as NodeX509Certificate } from 'node:crypto'
import { createRequire } from 'node:module'
import { x509 } from './x509.ts'
import type { X509Certificate, X509Crl } from '@peculiar/x509'
import type Forge from 'node-forge'
import type { CaCertificates } from './ca.ts'
import { readChildren, readElement } from './der.ts'
import { BundleKeyMismatch, CertInvalid, KeyInvalid } from './errors.ts'
import { errorText } from './keys.ts'
import { derToPem } from './pem.ts'
import { cryptoRandom, type Random } from './random.ts'

// PEM / DER / PKCS#12 encodings of what certs/ produces. Pure: bytes and strings in and out.

const PEM_CERT = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g

export function certificateToPem(cert: X509Certificate): string {
  return derToPem(cert.rawData, 'CERTIFICATE')
}

export function certificateToDer(cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.rawData)
}

export function crlToPem(crl: X509Crl): string {
  return derToPem(crl.rawData, 'X509 CRL')
}

export function crlToDer(crl: X509Crl): Uint8Array {
  return new Uint8Array(crl.rawData)
}

/** The chain to trust, as concatenated PEM: the issuing CA first, then the previous issuing CAs, then the root. */
export function chainPem(ca: CaCertificates | readonly X509Certificate[]): string {
  const authority = ca as CaCertificates
  const certs = Array.isArray(ca)
    ? ca
    : [authority.issuing.certificate, ...(authority.previous ?? []).map((p) => p.certificate), authority.root.certificate]
  return certs.map(certificateToPem).join('')
}

/**
 * How a certificate is parsed: now, or on first use (`defer`). A deferred certificate is checked now with
 * node:crypto's built-in X509Certificate (so garbage still fails here, GH_CERT_INVALID) and parsed with
 * @peculiar/x509 (~450 ms of CPU to load, certs/x509.ts) when a property is first read: for certificates
 * Gatehouse wrote itself (its CA's), which most CLI commands load but never read.
 */
export interface ParseOptions {
  defer?: boolean
}

/** Exactly one PEM certificate (GH_CERT_INVALID otherwise). */
export function parseCertificatePem(pem: string, options: ParseOptions = {}): X509Certificate {
  const certs = parseCertificatesPem(pem, options)
  if (certs.length !== 1) throw new CertInvalid(`expected one PEM certificate, found ${certs.length}`)
  return certs[0] as X509Certificate
}

/** Every "BEGIN CERTIFICATE" block of a PEM bundle (e.g. ca.pem), in order; at least one. */
export function parseCertificatesPem(pem: string, options: ParseOptions = {}): X509Certificate[] {
  if (typeof pem !== 'string') throw new CertInvalid('expected PEM text')
  const certs: X509Certificate[] = []
  for (const m of pem.matchAll(PEM_CERT)) {
    const der = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')
    certs.push(options.defer ? deferredCertificate(der) : parseCertificateDer(der))
  }
  if (certs.length === 0) throw new CertInvalid('no "BEGIN CERTIFICATE" PEM block')
  return certs
}

export function parseCertificateDer(der: Uint8Array): X509Certificate {
  try {
    const cert = new x509.X509Certificate(Uint8Array.from(der).buffer)
    void cert.subjectName // parse the lazily decoded parts now, so garbage fails here
    void cert.publicKey
    return cert
  } catch (err) {
    throw new CertInvalid(errorText(err), { cause: err })
  }
}

/**
 * A certificate parsed by parseCertificateDer when first used (ParseOptions.defer). Its DER, serial number
 * and validity are answered without parsing it in depth: what loading a CA with previous issuing CAs reads
 * of each (which are live, which is the current one), so a CLI call after `ca rotate` loads no @peculiar/x509.
 */
function deferredCertificate(der: Uint8Array): X509Certificate {
  let checked: NodeX509Certificate
  try {
    checked = new NodeX509Certificate(der)
  } catch (err) {
    throw new CertInvalid(errorText(err), { cause: err })
  }
  let parsed: X509Certificate | undefined
  const cert = () => {
    parsed ??= parseCertificateDer(der)
    return parsed
  }
  const rawData = Uint8Array.from(der).buffer
  // as @peculiar/x509 gives them: the serial's DER content in lowercase hex (without a sign byte), whole-second Dates
  const known: Record<string | symbol, () => unknown> = {
    rawData: () => rawData,
    serialNumber: () => serialHexOf(der),
    notBefore: () => new Date(checked.validFrom),
    notAfter: () => new Date(checked.validTo),
  }
  return new Proxy({} as X509Certificate, {
    get(_target, key) {
      if (parsed === undefined && Object.hasOwn(known, key)) return known[key]?.()
      const c = cert()
      const value: unknown = Reflect.get(c, key, c)
      return typeof value === 'function' ? value.bind(c) : value
    },
    has: (_target, key) => key in cert(),
    // instanceof X509Certificate holds
    getPrototypeOf: () => Object.getPrototypeOf(cert()),
  })
}

/** Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version?, serialNumber INTEGER, ... } }: the serial's content as hex. */
function serialHexOf(certDer: Uint8Array): string {
  const tbs = readChildren(certDer, readElement(certDer))[0]
  const fields = tbs === undefined ? [] : readChildren(certDer, tbs)
  const serial = fields[fields[0]?.tag === 0xa0 ? 1 : 0]
  if (serial === undefined || serial.tag !== 0x02) throw new CertInvalid('no serial number')
  let bytes = certDer.subarray(serial.contentStart, serial.end)
  if (bytes.length > 1 && bytes[0] === 0 && bytes[1]! > 0x7f) bytes = bytes.subarray(1) // the sign byte, as @peculiar drops it
  return Buffer.from(bytes).toString('hex')
}

// ---- PKCS#12 ---------------------------------------------------------------------------------------
// forge.pkcs12.toPkcs12Asn1 only takes forge RSA keys, so the PFX is assembled here with forge.asn1 and
// works for any key type. The shrouded key bag is node:crypto's encrypted PKCS#8 (PBES2: PBKDF2-HMAC-
// SHA256, AES-256-CBC, UTF-8 password, as OpenSSL 3 writes it); cert bags are plain; the key and its
// certificate share localKeyId (+ friendlyName); the MAC is HMAC-SHA256 with the RFC 7292 B.2 key.

/** OpenSSL's default PBE and MAC iteration count. */
const PKCS12_ITERATIONS = 2048
// node-forge is loaded by the first PKCS#12 bundle made, not at import: a CLI call that makes none saves ~70 ms
let forge: typeof Forge
let asn1: typeof Forge.asn1
let pki: typeof Forge.pki
let U: Forge.asn1.Class
let T: typeof Forge.asn1.Type
function loadForge(): void {
  if (forge) return
  forge = createRequire(import.meta.url)('node-forge')
  ;({ asn1, pki } = forge)
  U = asn1.Class.UNIVERSAL
  T = asn1.Type
}

export interface Pkcs12Request {
  privateKeyPkcs8: Uint8Array
  certificate: X509Certificate
  /** CA certificates to include, e.g. [issuing, root] */
  chain: readonly X509Certificate[]
  password: string
  friendlyName?: string
}

/** A password-protected .p12 / .pfx holding the key, its certificate and the chain (OpenSSL 3 reads it). */
export function toPkcs12(req: Pkcs12Request, deps: { random: Random } = { random: cryptoRandom }): Uint8Array {
  loadForge()
  const keyObject = privateKeyMatchingCertificate(req.privateKeyPkcs8, req.certificate)
  const leafDer = Buffer.from(req.certificate.rawData)
  const localKeyId = createHash('sha1').update(leafDer).digest().toString('binary')
  const attrs = bagAttributes(localKeyId, req.friendlyName)

  const certBags = [certBag(leafDer, attrs), ...req.chain.map((c) => certBag(Buffer.from(c.rawData), undefined))]
  const encryptedKey = keyObject.export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase: req.password })
  const shrouded = asn1.fromDer(forge.util.createBuffer(encryptedKey.toString('binary')))
  const keyBag = seq([oid(pki.oids.pkcs8ShroudedKeyBag!), explicit0(shrouded), attrs])

  const authSafe = seq([dataContentInfo(seq(certBags)), dataContentInfo(seq([keyBag]))])
  const authSafeDer = asn1.toDer(authSafe).getBytes()

  const macSalt = Buffer.from(deps.random.bytes(16)).toString('binary')
  const macKey = forge.pkcs12.generateKey(
    req.password,
    forge.util.createBuffer(macSalt),
    3, // RFC 7292 B.3: ID 3 = MAC key
    PKCS12_ITERATIONS,
    32,
    forge.md.sha256.create(),
  )
  const hmac = forge.hmac.create()
  hmac.start('sha256', macKey.getBytes())
  hmac.update(authSafeDer)
  const macData = seq([
    seq([seq([oid(pki.oids.sha256!), prim(T.NULL, '')]), prim(T.OCTETSTRING, hmac.digest().getBytes())]),
    prim(T.OCTETSTRING, macSalt),
    prim(T.INTEGER, asn1.integerToDer(PKCS12_ITERATIONS).getBytes()),
  ])

  const pfx = seq([
    prim(T.INTEGER, asn1.integerToDer(3).getBytes()),
    seq([oid(pki.oids.data!), explicit0(prim(T.OCTETSTRING, authSafeDer))]),
    macData,
  ])
  return new Uint8Array(Buffer.from(asn1.toDer(pfx).getBytes(), 'binary'))
}

/** The PKCS#8 key as a node:crypto key, checked to be the key of the certificate. */
function privateKeyMatchingCertificate(pkcs8: Uint8Array, cert: X509Certificate): KeyObject {
  let key: KeyObject
  try {
    key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })
  } catch (err) {
    throw new KeyInvalid(errorText(err), { cause: err })
  }
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' })
  const fromCert = createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' }).export({
    type: 'spki',
    format: 'der',
  })
  if (!fromKey.equals(fromCert)) throw new BundleKeyMismatch()
  return key
}

function bagAttributes(localKeyId: string, friendlyName: string | undefined): Forge.asn1.Asn1 {
  const attrs = [seq([oid(pki.oids.localKeyId!), set([prim(T.OCTETSTRING, localKeyId)])])]
  if (friendlyName !== undefined) {
    attrs.push(seq([oid(pki.oids.friendlyName!), set([prim(T.BMPSTRING, friendlyName)])]))
  }
  return set(attrs)
}

function certBag(der: Buffer, attrs: Forge.asn1.Asn1 | undefined): Forge.asn1.Asn1 {
  const value = seq([oid(pki.oids.x509Certificate!), explicit0(prim(T.OCTETSTRING, der.toString('binary')))])
  return seq(attrs === undefined ? [oid(pki.oids.certBag!), explicit0(value)] : [oid(pki.oids.certBag!), explicit0(value), attrs])
}

function dataContentInfo(content: Forge.asn1.Asn1): Forge.asn1.Asn1 {
  return seq([oid(pki.oids.data!), explicit0(prim(T.OCTETSTRING, asn1.toDer(content).getBytes()))])
}

const seq = (v: Forge.asn1.Asn1[]) => asn1.create(U, T.SEQUENCE, true, v)
const set = (v: Forge.asn1.Asn1[]) => asn1.create(U, T.SET, true, v)
const prim = (type: number, v: string) => asn1.create(U, type, false, v)
const oid = (id: string) => prim(T.OID, asn1.oidToDer(id).getBytes())
const explicit0 = (v: Forge.asn1.Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [v])
