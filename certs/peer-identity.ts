import { createHash } from 'node:crypto'
import { x509 } from './x509.ts'
import type { X509Certificate } from '@peculiar/x509'
import { readChildren, readElement } from './der.ts'
import { isDeviceId } from './device-id.ts'
import { CertInvalid, FingerprintInvalid, SerialInvalid } from './errors.ts'
import { subtle } from './keys.ts'

/**
 * Who is on the other end of a TLS connection, as far as its certificate says. The broker builds one per
 * connect (from Node's getPeerX509Certificate()) and asks the registry about it.
 */
export interface PeerIdentity {
  /** the subject CN; the first one when a subject has several */
  commonName: string | null
  /** the CN when it is a valid device id and the only CN of the subject; otherwise null */
  deviceId: string | null
  /** lowercase hex, no colons, no leading zeros */
  serial: string
  /** SHA-256 of the DER, lowercase hex, no colons */
  fingerprint: string
  notBefore: Date
  notAfter: Date
}

/** Canonical serial: lowercase hex without colons, spaces or leading zeros ("0" for zero). */
export function normalizeSerial(hex: string): string {
  const s = typeof hex === 'string' ? hex.replace(/[:\s]/g, '').toLowerCase() : ''
  if (!/^[0-9a-f]{1,128}$/.test(s)) throw new SerialInvalid(String(hex).slice(0, 80))
  return s.replace(/^0+(?=.)/, '')
}

/** Canonical SHA-256 fingerprint: 64 lowercase hex digits, no colons. */
export function normalizeFingerprint(s: string): string {
  const f = typeof s === 'string' ? s.replace(/[:\s]/g, '').toLowerCase() : ''
  if (!/^[0-9a-f]{64}$/.test(f)) throw new FingerprintInvalid(String(s).slice(0, 120))
  return f
}

export async function certificateFingerprint(cert: X509Certificate): Promise<string> {
  return toHex(new Uint8Array(await subtle.digest('SHA-256', cert.rawData)))
}

export async function identityFromCertificate(cert: X509Certificate | Uint8Array): Promise<PeerIdentity> {
  let c: X509Certificate
  try {
    c = cert instanceof x509.X509Certificate ? cert : new x509.X509Certificate(cert)
  } catch (err) {
    throw new CertInvalid(err instanceof Error ? err.message : String(err), { cause: err })
  }
  const cns = c.subjectName.getField('CN')
  return {
    ...fromCommonNames(cns),
    serial: normalizeSerial(c.serialNumber),
    fingerprint: await certificateFingerprint(c),
    notBefore: c.notBefore,
    notAfter: c.notAfter,
  }
}

/**
 * The shape of Node's crypto.X509Certificate (tls `getPeerX509Certificate()`) that we read. Each field is
 * computed when read, where `getPeerCertificate()` builds every field of the certificate (three
 * fingerprints, the public key, names) on each call: the most the connect path spent beyond TLS.
 */
export interface PeerCertificateLike {
  /** the DER: the subject's CNs are read from it (not from Node's printed subject, whose escaping is ambiguous) */
  raw: Uint8Array
  serialNumber: string
  fingerprint256: string
  validFrom: string
  validTo: string
  /** the extended key usage OIDs (Node 20's name for them); undefined without the extension */
  keyUsage?: string[] | undefined
}

/** A peer's identity and how many CNs its subject has (a claim or app certificate must have exactly one). */
export interface PeerCertificateIdentity extends PeerIdentity {
  commonNames: number
}

/** Cheap (the subject is the only part parsed): the broker calls it on every connect. Agrees with identityFromCertificate. */
export function identityFromPeerCertificate(pc: PeerCertificateLike): PeerCertificateIdentity {
  const cns = subjectCommonNames(pc.raw)
  return {
    ...fromCommonNames(cns),
    commonNames: cns.length,
    serial: normalizeSerial(pc.serialNumber),
    fingerprint: normalizeFingerprint(pc.fingerprint256),
    notBefore: parseTlsDate(pc.validFrom, 'validFrom'),
    notAfter: parseTlsDate(pc.validTo, 'validTo'),
  }
}

/** 2.5.4.3 (commonName) as DER OID content */
const CN_OID = [0x55, 0x04, 0x03]

/**
 * The CN values of a certificate's subject, in order, read from its DER:
 * tbs = SEQUENCE { [0] version?, serial, signature, issuer, validity, subject, ... };
 * Name = SEQUENCE OF SET OF SEQUENCE { type OID, value DirectoryString }.
 */
export function subjectCommonNames(der: Uint8Array): string[] {
  try {
    const tbs = readChildren(der, readElement(der))[0]
    if (tbs === undefined) throw new RangeError('no TBSCertificate')
    const fields = readChildren(der, tbs)
    const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4]
    if (subject === undefined || subject.tag !== 0x30) throw new RangeError('no subject')
    const cns: string[] = []
    for (const rdn of readChildren(der, subject)) {
      for (const atv of readChildren(der, rdn)) {
        const [type, value] = readChildren(der, atv)
        if (type?.tag !== 0x06 || value === undefined) throw new RangeError('malformed name attribute')
        const oid = der.subarray(type.contentStart, type.end)
        if (oid.length === 3 && oid.every((b, i) => b === CN_OID[i])) cns.push(directoryString(der, value))
      }
    }
    return cns
  } catch (err) {
    throw new CertInvalid(err instanceof Error ? err.message : String(err), { cause: err })
  }
}

/** A DirectoryString as text, as OpenSSL prints it for Node (UTF-8 out of any of the string types). */
function directoryString(der: Uint8Array, e: { tag: number; contentStart: number; end: number }): string {
  const bytes = Buffer.from(der.buffer, der.byteOffset + e.contentStart, e.end - e.contentStart)
  switch (e.tag) {
    case 0x0c: // UTF8String
      return bytes.toString('utf8')
    case 0x13: // PrintableString
    case 0x14: // TeletexString
    case 0x16: // IA5String
      return bytes.toString('latin1')
    case 0x1e: // BMPString (UTF-16BE)
      return Buffer.from(bytes).swap16().toString('utf16le')
    default:
      throw new RangeError(`unsupported string type 0x${e.tag.toString(16)} in the subject`)
  }
}

function fromCommonNames(cns: readonly string[]): Pick<PeerIdentity, 'commonName' | 'deviceId'> {
  const commonName = cns[0] ?? null
  const deviceId = cns.length === 1 && isDeviceId(commonName) ? commonName : null
  return { commonName, deviceId }
}

/** Node prints validity as "Jan  1 00:00:00 2026 GMT". */
function parseTlsDate(text: string, field: string): Date {
  const ms = typeof text === 'string' ? Date.parse(text) : Number.NaN
  if (Number.isNaN(ms)) throw new CertInvalid(`unreadable ${field} '${String(text).slice(0, 40)}'`)
  return new Date(ms)
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/**
 * SHA-256 (lowercase hex) of a certificate's public key: its SubjectPublicKeyInfo DER, read straight from
 * the certificate's DER (the first of a PEM) without a full parse, so a fleet of thousands is cheap.
 * Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version?, serial, signature, issuer, validity, subject, spki, ... } }
 */
export function publicKeySha256(pem: string): string {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem)?.[1]
  if (body === undefined) throw new CertInvalid('no PEM certificate')
  const der = new Uint8Array(Buffer.from(body.replace(/\s+/g, ''), 'base64'))
  try {
    const tbs = readChildren(der, readElement(der))[0]
    if (tbs === undefined) throw new RangeError('no TBSCertificate')
    const fields = readChildren(der, tbs)
    const spki = fields[fields[0]?.tag === 0xa0 ? 6 : 5]
    if (spki === undefined || spki.tag !== 0x30) throw new RangeError('no SubjectPublicKeyInfo')
    return createHash('sha256').update(der.subarray(spki.start, spki.end)).digest('hex')
  } catch (err) {
    throw new CertInvalid(err instanceof Error ? err.message : String(err), { cause: err })
  }
}
