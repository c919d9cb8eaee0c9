import { createHash } from 'node:crypto'
import { x509 } from './x509.ts'
import type { X509Certificate } from '@peculiar/x509'
import { readChildren, readElement } from './der.ts'
import { isDeviceId } from './device-id.ts'
import { CertInvalid, FingerprintInvalid, SerialInvalid } from './errors.ts'
import { subtle } from './keys.ts'

/**
 * Who is on the other end of a TLS connection, as far as its certificate says. The broker builds one per
 * connect (from Node's getPeerCertificate()) and asks the registry about it.
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

/** The shape of Node's tls `getPeerCertificate()` that we read. */
export interface PeerCertificateLike {
  subject?: { CN?: string | string[] }
  serialNumber: string
  fingerprint256: string
  valid_from: string
  valid_to: string
}

/** Cheap (no ASN.1 parsing): the broker calls it on every connect. Agrees with identityFromCertificate. */
export function identityFromPeerCertificate(pc: PeerCertificateLike): PeerIdentity {
  const cn = pc.subject?.CN
  const cns = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn]
  return {
    ...fromCommonNames(cns),
    serial: normalizeSerial(pc.serialNumber),
    fingerprint: normalizeFingerprint(pc.fingerprint256),
    notBefore: parseTlsDate(pc.valid_from, 'valid_from'),
    notAfter: parseTlsDate(pc.valid_to, 'valid_to'),
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
