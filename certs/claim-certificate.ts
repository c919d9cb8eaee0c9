import { createHash } from 'node:crypto'
import type { IssuerKeyPair } from './ca.ts'
import { crlDistributionPoints } from './crl-distribution-point.ts'
import { APP_CN_PREFIX, APP_NAME_PATTERN, CLAIM_CN_PREFIX, isClaimId } from './device-id.ts'
import { AppNameInvalid, CertValidityInvalid, ClaimIdInvalid } from './errors.ts'
import {
  BACKDATE_MS,
  assertIssuerValidAt,
  authorityKeyIdentifier,
  checkPublicKey,
  randomSerial,
  signCertificate,
  type IssueDeps,
} from './issue-certificate.ts'
import type { CryptoKey } from './keys.ts'
import { normalizeSerial } from './peer-identity.ts'
import { x509 } from './x509.ts'

/** How much longer a claim certificate stays valid than its claim provisions (docs/device-lifecycle.md). */
export const CLAIM_GRACE_DAYS = 30

export interface ClaimCertificateRequest {
  claimId: string
  publicKey: CryptoKey
  /** the certificate's notAfter; capped at the issuer's notAfter */
  notAfter: Date
  /** the issuer's CRL (crlUrl): written as a CRL Distribution Points extension; absent, none is */
  crlUrl?: string
}

export interface ClaimCertificate {
  pem: string
  der: Uint8Array
  serial: string
  fingerprint: string
  notBefore: Date
  notAfter: Date
}

/**
 * A claim certificate (zero-touch provisioning, docs/device-lifecycle.md): CN `claim:<claimId>`,
 * clientAuth only, not a CA, issued by the issuing CA like a device certificate. Pure: the caller keeps
 * the key and decides where the certificate goes.
 */
export async function issueClaimCertificate(
  issuer: IssuerKeyPair,
  req: ClaimCertificateRequest,
  deps: IssueDeps,
): Promise<ClaimCertificate> {
  if (!isClaimId(req.claimId)) throw new ClaimIdInvalid(String(req.claimId).slice(0, 80))
  return issueNamedClientCertificate(issuer, `${CLAIM_CN_PREFIX}${req.claimId}`, req, deps)
}

/**
 * An app certificate (docs/device-protocol.md "Apps"): CN `app:<name>`, otherwise exactly as a claim
 * certificate (clientAuth only, issued by the issuing CA, so a PKCS#11 CA key signs it the same way).
 */
export async function issueAppCertificate(
  issuer: IssuerKeyPair,
  req: Omit<ClaimCertificateRequest, 'claimId'> & { name: string },
  deps: IssueDeps,
): Promise<ClaimCertificate> {
  if (typeof req.name !== 'string' || !APP_NAME_PATTERN.test(req.name)) throw new AppNameInvalid(String(req.name).slice(0, 80))
  return issueNamedClientCertificate(issuer, `${APP_CN_PREFIX}${req.name}`, req, deps)
}

/** A clientAuth leaf whose CN is outside the device id rule (a claim's or an app's). */
async function issueNamedClientCertificate(
  issuer: IssuerKeyPair,
  commonName: string,
  req: Omit<ClaimCertificateRequest, 'claimId'>,
  deps: IssueDeps,
): Promise<ClaimCertificate> {
  const rsa = checkPublicKey(req.publicKey)
  const now = deps.clock.now()
  assertIssuerValidAt(issuer.certificate, now)
  const t = Math.floor(now.getTime() / 1000) * 1000
  const notAfterMs = Math.floor(Math.min(req.notAfter.getTime(), issuer.certificate.notAfter.getTime()) / 1000) * 1000
  if (!Number.isFinite(notAfterMs) || notAfterMs <= t) throw new CertValidityInvalid(String(req.notAfter))
  const notBefore = new Date(t - BACKDATE_MS)
  const notAfter = new Date(notAfterMs)
  const usages = rsa ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature
  const cert = await signCertificate({
    signingKey: issuer.privateKey,
    issuerName: issuer.certificate.subjectName,
    subject: [{ CN: [commonName] }],
    publicKey: req.publicKey,
    serial: randomSerial(deps.random),
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
      await authorityKeyIdentifier(issuer.certificate),
      ...(req.crlUrl === undefined ? [] : [crlDistributionPoints(req.crlUrl)]),
    ],
  })
  const der = new Uint8Array(cert.rawData)
  return {
    pem: cert.toString('pem'),
    der,
    serial: normalizeSerial(cert.serialNumber),
    fingerprint: createHash('sha256').update(der).digest('hex'),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  }
}
