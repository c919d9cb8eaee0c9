import { isIP } from 'node:net'
import { generatorCrypto, x509 } from './x509.ts'
import type * as X509 from '@peculiar/x509'
import type { X509Certificate } from '@peculiar/x509'
import type { IssuerKeyPair } from './ca.ts'
import type { Clock } from './clock.ts'
import { CaIssuerExpired, CertHostnameInvalid, CertValidityInvalid, KeyInvalid } from './errors.ts'
import { isRsaKey, keyAlgorithmOfAny, signingAlgorithmFor, subtle, type AnyKey, type CryptoKey } from './keys.ts'
import { toHex } from './peer-identity.ts'
import type { Random } from './random.ts'

export interface IssueDeps {
  clock: Clock
  random: Random
}

/** notBefore is backdated by this much so that devices with a slightly slow clock accept a fresh cert. */
export const BACKDATE_MS = 60_000
const DAY_MS = 86_400_000

export const DEVICE_URI_PREFIX = 'urn:gatehouse:device:'
export const DEFAULT_DEVICE_VALID_DAYS = 365
export const DEFAULT_SERVER_VALID_DAYS = 825
export const DEFAULT_SERVER_COMMON_NAME = 'gatehouse'
/** Always in a server certificate, so local clients and tests can connect without extra names. */
export const DEFAULT_SERVER_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1']

/** The broker's TLS certificate: serverAuth only; SANs localhost, 127.0.0.1, ::1 and each hostname. */
export async function issueServerCertificate(
  issuer: IssuerKeyPair,
  req: { hostnames?: string[]; publicKey: CryptoKey; validDays?: number; commonName?: string },
  deps: IssueDeps,
): Promise<X509Certificate> {
  const commonName = req.commonName ?? DEFAULT_SERVER_COMMON_NAME
  if (typeof commonName !== 'string' || commonName.length < 1 || commonName.length > 64) {
    throw new CertHostnameInvalid(String(commonName).slice(0, 80))
  }
  const rsa = checkPublicKey(req.publicKey)
  const names = serverAltNames(req.hostnames ?? [])
  const { notBefore, notAfter } = leafValidity(issuer, req.validDays ?? DEFAULT_SERVER_VALID_DAYS, deps.clock)
  return signCertificate({
    signingKey: issuer.privateKey,
    issuerName: issuer.certificate.subjectName,
    subject: [{ CN: [commonName] }],
    publicKey: req.publicKey,
    serial: randomSerial(deps.random),
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(leafKeyUsages(rsa), true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
      await authorityKeyIdentifier(issuer.certificate),
    ],
  })
}

/** DNS and IP SANs for a server certificate, defaults first, deduplicated. An IP literal becomes an IP SAN. */
export function serverAltNames(hostnames: readonly string[]): X509.JsonGeneralNames {
  const seen = new Set<string>()
  const names: X509.JsonGeneralNames = []
  for (const raw of [...DEFAULT_SERVER_NAMES, ...hostnames]) {
    if (typeof raw !== 'string') throw new CertHostnameInvalid(String(raw))
    const value = raw
      .trim()
      .replace(/^\[(.*)\]$/, '$1')
      .toLowerCase() // "[::1]" -> "::1"
    const ip = isIP(value)
    // IPv6 with an embedded IPv4 part ("::ffff:1.2.3.4") is refused (the SAN encoder cannot write it): use the IPv4 form.
    if (ip === 0 ? !isDnsName(value) : ip === 6 && value.includes('.')) throw new CertHostnameInvalid(raw.slice(0, 80))
    if (seen.has(value)) continue
    seen.add(value)
    names.push({ type: ip ? 'ip' : 'dns', value })
  }
  return names
}

const DNS_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DNS_NAME = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`)
function isDnsName(s: string): boolean {
  return s.length <= 253 && DNS_NAME.test(s)
}

/** 16 random bytes, top bit cleared and first byte nonzero: a positive 121..127-bit serial (RFC 5280 §4.1.2.2). */
export function randomSerial(random: Random): string {
  return toHex(randomSerialBytes(random))
}

/** The serial of randomSerial() as its 16 bytes: also the DER INTEGER content (no 00 padding needed). */
export function randomSerialBytes(random: Random): Uint8Array {
  const bytes = Uint8Array.from(random.bytes(16)).slice(0, 16)
  if (bytes.length < 16) throw new RangeError('Random.bytes(16) returned fewer than 16 bytes')
  bytes[0] = bytes[0]! & 0x7f || 0x01
  return bytes
}

/** [now - 60 s, now + days], whole seconds, never past `cap`. */
export function validityWindow(now: Date, validDays: number, cap?: Date): { notBefore: Date; notAfter: Date } {
  if (typeof validDays !== 'number' || !Number.isFinite(validDays) || validDays <= 0) {
    throw new CertValidityInvalid(String(validDays))
  }
  const t = floorToSecond(now.getTime())
  let notAfter = floorToSecond(t + validDays * DAY_MS)
  if (cap !== undefined) notAfter = Math.min(notAfter, floorToSecond(cap.getTime()))
  return { notBefore: new Date(t - BACKDATE_MS), notAfter: new Date(notAfter) }
}

export function leafValidity(issuer: IssuerKeyPair, validDays: number, clock: Clock): { notBefore: Date; notAfter: Date } {
  const now = clock.now()
  assertIssuerValidAt(issuer.certificate, now)
  return validityWindow(now, validDays, issuer.certificate.notAfter)
}

export function assertIssuerValidAt(cert: X509Certificate, now: Date): void {
  if (now.getTime() < cert.notBefore.getTime() || now.getTime() >= cert.notAfter.getTime()) {
    throw new CaIssuerExpired(cert.subject, now.toISOString(), `${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}`)
  }
}

function floorToSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000
}

function leafKeyUsages(rsa: boolean): X509.KeyUsageFlags {
  return rsa ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature
}

/** Checks that the key is a public key of one of our algorithms; true when it is RSA. */
export function checkPublicKey(key: AnyKey): boolean {
  if (key?.type !== 'public') throw new KeyInvalid(`expected a public key, got ${String(key?.type ?? key)}`)
  keyAlgorithmOfAny(key)
  return isRsaKey(key)
}

/** AKI = the issuer's SKI (or, if it has none, the SHA-1 of its public key). */
export async function authorityKeyIdentifier(issuerCert: X509Certificate): Promise<X509.AuthorityKeyIdentifierExtension> {
  const ski = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension)
  if (ski !== null) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false)
  return x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false)
}

/** Signs a certificate; without `issuerName` it is self-signed (subject = issuer). */
export async function signCertificate(p: {
  signingKey: CryptoKey
  issuerName?: X509.Name
  subject: X509.JsonName
  publicKey: CryptoKey
  serial: string
  notBefore: Date
  notAfter: Date
  extensions: X509.Extension[]
}): Promise<X509Certificate> {
  const subject = new x509.Name(p.subject)
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: p.serial,
      subject,
      issuer: p.issuerName ?? subject,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      // SPKI bytes: the public key is Node's, the signer may be another provider (an HSM) that cannot export it
      publicKey: await subtle.exportKey('spki', p.publicKey),
      signingKey: p.signingKey,
      signingAlgorithm: signingAlgorithmFor(p.signingKey),
      extensions: p.extensions,
    },
    generatorCrypto(p.signingKey),
  )
}
