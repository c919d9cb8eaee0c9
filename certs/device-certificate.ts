// Device certificates, built straight to DER. Batch provisioning issues thousands of these, and
// @peculiar/x509's generic ASN.1 machinery cost ~4 ms of CPU each; here a certificate is a template
// with the per-device fields filled in (~20 µs of JavaScript). The CA signs with signDer (keys.ts):
// node:crypto's sign() for a software key, the key's own provider for a key bound to one (an HSM). The TBSCertificate is byte for byte the one the @peculiar generator wrote: test/unit/certs/
// device-certificate.test.ts checks it against that generator for P-256, P-384 and RSA.
import { createHash } from 'node:crypto'
import type { X509Certificate } from '@peculiar/x509'
import { parseCertificateDer } from './bundle.ts'
import type { IssuerKeyPair } from './ca.ts'
import {
  PRINTABLE,
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  integer,
  octetString,
  oid,
  printableString,
  readChildren,
  readElement,
  sequence,
  set,
  smallInteger,
  standalone,
  time,
  utf8String,
  NULL,
  type Der,
} from './der.ts'
import { crlDistributionPointsDer } from './crl-distribution-point.ts'
import { assertDeviceId } from './device-id.ts'
import { CertInvalid } from './errors.ts'
import {
  DEFAULT_DEVICE_VALID_DAYS,
  DEVICE_URI_PREFIX,
  authorityKeyIdentifier,
  checkPublicKey,
  leafValidity,
  randomSerialBytes,
  type IssueDeps,
} from './issue-certificate.ts'
import {
  ecAlgorithmIdentifier,
  ecCurveOf,
  ecPublicPoint,
  errorText,
  exportSpki,
  signDer,
  signingAlgorithmFor,
  type AnyKey,
  type CryptoKey,
} from './keys.ts'
import { normalizeSerial, toHex } from './peer-identity.ts'
import { derToPem } from './pem.ts'

export interface DeviceCertificateRequest {
  deviceId: string
  /** a WebCrypto key (from a CSR, say) or a node:crypto KeyObject (a key Gatehouse made to hand out) */
  publicKey: AnyKey
  validDays?: number
  /** the issuer's CRL (crlUrl): written as a CRL Distribution Points extension; absent, none is */
  crlUrl?: string
}

/** An issued device certificate, with what the registry stores about it, without an X509Certificate. */
export interface DeviceCertificateDer {
  der: Uint8Array
  pem: string
  /** canonical: lowercase hex, no leading zeros (normalizeSerial) */
  serial: string
  /** SHA-256 of the DER, lowercase hex (certificateFingerprint) */
  fingerprint: string
  /** SHA-256 of its SubjectPublicKeyInfo, lowercase hex: publicKeySha256 of its PEM, from the bytes it was built of */
  keySha256: string
  notBefore: Date
  notAfter: Date
}

// The parts every device certificate shares (the extension order is the one the old generator wrote).
const OID_COMMON_NAME = oid('2.5.4.3')
const OID_SUBJECT_ALT_NAME = oid('2.5.29.17')
const OID_SUBJECT_KEY_IDENTIFIER = oid('2.5.29.14')
const VERSION_3 = explicit(0, smallInteger(2))
const DIGITAL_SIGNATURE = 0x80
const KEY_ENCIPHERMENT = 0x20
const BASIC_CONSTRAINTS_END_ENTITY = extension(oid('2.5.29.19'), true, sequence())
const KEY_USAGE_EC = extension(oid('2.5.29.15'), true, keyUsageBits(DIGITAL_SIGNATURE))
const KEY_USAGE_RSA = extension(oid('2.5.29.15'), true, keyUsageBits(DIGITAL_SIGNATURE | KEY_ENCIPHERMENT))
const EXTENDED_KEY_USAGE_CLIENT_AUTH = extension(oid('2.5.29.37'), false, sequence(oid('1.3.6.1.5.5.7.3.2')))

/** A certificate for one device: CN = device id, clientAuth only, not a CA. */
export async function issueDeviceCertificate(
  issuer: IssuerKeyPair,
  req: DeviceCertificateRequest,
  deps: IssueDeps,
): Promise<X509Certificate> {
  return parseCertificateDer((await issueDeviceCertificateDer(issuer, req, deps)).der)
}

/**
 * The same certificate as issueDeviceCertificate, as DER and PEM plus its serial, fingerprint and
 * validity: the provisioning hot path, which never needs the parsed form.
 */
export async function issueDeviceCertificateDer(
  issuer: IssuerKeyPair,
  req: DeviceCertificateRequest,
  deps: IssueDeps,
): Promise<DeviceCertificateDer> {
  const deviceId = assertDeviceId(req.deviceId)
  const rsa = checkPublicKey(req.publicKey)
  const { notBefore, notAfter } = leafValidity(issuer, req.validDays ?? DEFAULT_DEVICE_VALID_DAYS, deps.clock)
  const serial = randomSerialBytes(deps.random)
  const signing = signatureAlgorithmOf(issuer.privateKey)
  const [template, key] = await Promise.all([issuerTemplate(issuer.certificate), subjectPublicKeyInfo(req.publicKey)])

  const tbs = sequence(
    VERSION_3,
    integer(serial),
    signing.identifier,
    template.name,
    sequence(time(notBefore), time(notAfter)),
    commonNameOnly(deviceId),
    key.spki,
    explicit(
      3,
      sequence(
        BASIC_CONSTRAINTS_END_ENTITY,
        rsa ? KEY_USAGE_RSA : KEY_USAGE_EC,
        EXTENDED_KEY_USAGE_CLIENT_AUTH,
        extension(OID_SUBJECT_ALT_NAME, false, sequence(implicitPrimitive(6, ascii(`${DEVICE_URI_PREFIX}${deviceId}`)))),
        extension(OID_SUBJECT_KEY_IDENTIFIER, false, octetString(sha1(key.subjectPublicKey))),
        template.authorityKeyIdentifier,
        ...(req.crlUrl === undefined ? [] : [crlDistributionPointsDer(req.crlUrl)]),
      ),
    ),
  )
  const der = standalone(sequence(tbs, signing.identifier, bitString(await signDer(issuer.privateKey, tbs))))
  return {
    der,
    pem: derToPem(der, 'CERTIFICATE'),
    serial: normalizeSerial(toHex(serial)),
    fingerprint: createHash('sha256').update(der).digest('hex'),
    keySha256: createHash('sha256').update(key.spki).digest('hex'),
    notBefore,
    notAfter,
  }
}

// ---- per issuer, computed once ----------------------------------------------------------------------

interface IssuerTemplate {
  /** the issuer certificate's subject, its exact bytes (RFC 5280 §4.1.2.4: issuer = issuer's subject) */
  name: Der
  /** AKI = the issuer's SKI, or the SHA-1 of its key when it has none (as issue-certificate.ts does) */
  authorityKeyIdentifier: Der
}

const templates = new WeakMap<X509Certificate, Promise<IssuerTemplate>>()

function issuerTemplate(cert: X509Certificate): Promise<IssuerTemplate> {
  let template = templates.get(cert)
  if (template === undefined) {
    template = buildIssuerTemplate(cert)
    templates.set(cert, template)
    template.catch(() => templates.delete(cert))
  }
  return template
}

async function buildIssuerTemplate(cert: X509Certificate): Promise<IssuerTemplate> {
  return {
    name: subjectNameBytes(new Uint8Array(cert.rawData)),
    // the very Extension the generator used to encode, once per issuer
    authorityKeyIdentifier: new Uint8Array((await authorityKeyIdentifier(cert)).rawData),
  }
}

/** Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version?, serial, signature, issuer, validity, subject, ... } } */
function subjectNameBytes(certDer: Uint8Array): Der {
  try {
    const tbs = readChildren(certDer, readElement(certDer))[0]
    if (tbs === undefined) throw new RangeError('no TBSCertificate')
    const fields = readChildren(certDer, tbs)
    const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4]
    if (subject === undefined || subject.tag !== 0x30) throw new RangeError('no subject Name')
    return certDer.slice(subject.start, subject.end)
  } catch (err) {
    throw new CertInvalid(errorText(err), { cause: err })
  }
}

// ---- per signing key: the signature's AlgorithmIdentifier -------------------------------------------

interface SignatureAlgorithm {
  identifier: Der
}

const SIGNATURE_ALGORITHMS: Record<string, SignatureAlgorithm> = {
  'ECDSA/SHA-256': { identifier: sequence(oid('1.2.840.10045.4.3.2')) },
  'ECDSA/SHA-384': { identifier: sequence(oid('1.2.840.10045.4.3.3')) },
  'RSASSA-PKCS1-v1_5/SHA-256': { identifier: sequence(oid('1.2.840.113549.1.1.11'), NULL) },
}

/** What the issuer key signs with (signingAlgorithmFor: P-256 with SHA-256, P-384 with SHA-384, RSA with SHA-256). */
function signatureAlgorithmOf(key: CryptoKey): SignatureAlgorithm {
  const { name, hash } = signingAlgorithmFor(key)
  const alg = SIGNATURE_ALGORITHMS[`${name}/${hash}`]
  if (alg === undefined) throw new RangeError(`no signature algorithm for ${name} with ${hash}`)
  return alg
}

// ---- per device ------------------------------------------------------------------------------------

/** The SPKI DER and its subjectPublicKey bits (what the SKI hashes: RFC 5280 §4.2.1.2 method 1). */
async function subjectPublicKeyInfo(key: AnyKey): Promise<{ spki: Der; subjectPublicKey: Uint8Array }> {
  const curve = ecCurveOf(key)
  if (curve !== undefined) {
    // the point is cheaper to export than the SPKI, which is a fixed header in front of it
    const point = await ecPublicPoint(key)
    return { spki: sequence(ecAlgorithmIdentifier(curve), bitString(point)), subjectPublicKey: point }
  }
  const spki = await exportSpki(key)
  const [, bits] = readChildren(spki, readElement(spki))
  if (bits === undefined || bits.tag !== 0x03) throw new RangeError('SPKI without a BIT STRING')
  return { spki, subjectPublicKey: spki.subarray(bits.contentStart + 1, bits.end) }
}

/** Name ::= SEQUENCE { SET { CN } }, PrintableString when it can be, else UTF8String (as @peculiar/x509 chose). */
function commonNameOnly(cn: string): Der {
  return sequence(set(sequence(OID_COMMON_NAME, PRINTABLE.test(cn) ? printableString(cn) : utf8String(cn))))
}

function extension(id: Der, critical: boolean, value: Der): Der {
  return critical ? sequence(id, boolean(true), octetString(value)) : sequence(id, octetString(value))
}

/** KeyUsage BIT STRING: bit 0 is the top bit of the first byte; DER drops trailing zero bits. */
function keyUsageBits(firstByte: number): Der {
  let unused = 0
  while (unused < 7 && ((firstByte >> unused) & 1) === 0) unused++
  return bitString(Uint8Array.of(firstByte), unused)
}

function sha1(data: Uint8Array): Uint8Array {
  return createHash('sha1').update(data).digest()
}

function ascii(s: string): Uint8Array {
  return Buffer.from(s, 'latin1')
}
