import { createHash } from 'node:crypto'
import type { IssuerKeyPair } from './ca.ts'
import { crlDistributionPoints } from './crl-distribution-point.ts'
import { CLAIM_CN_PREFIX, isClaimId } from './device-id.ts'
import { CertValidityInvalid, ClaimIdInvalid } from './errors.ts'
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
    subject: [{ CN: [`${CLAIM_CN_PREFIX}${req.claimId}`] }],
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
