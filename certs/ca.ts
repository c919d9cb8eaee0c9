import { x509 } from './x509.ts'
import type { X509Certificate } from '@peculiar/x509'
import type { Clock } from './clock.ts'
import { CaNameInvalid } from './errors.ts'
import {
  authorityKeyIdentifier,
  randomSerial,
  signCertificate,
  validityWindow,
} from './issue-certificate.ts'
import { DEFAULT_KEY_ALGORITHM, generateKeyPair, type CryptoKey, type KeyAlgorithm } from './keys.ts'
import type { Random } from './random.ts'

/** A CA certificate and the key that signs with it. */
export interface IssuerKeyPair {
  certificate: X509Certificate
  privateKey: CryptoKey
}

/**
 * Two tiers: the root signs only the issuing CA (its key can then live offline / encrypted), the issuing
 * CA signs device and server certificates and CRLs. Clients trust the chain (issuing + root).
 */
export interface CertificateAuthority {
  root: IssuerKeyPair
  issuing: IssuerKeyPair
}

export interface CreateCertificateAuthorityOptions {
  /** default 'Gatehouse': subjects become "<name> Root CA" and "<name> Issuing CA" */
  name?: string
  keyAlgorithm?: KeyAlgorithm
  rootValidDays?: number
  issuingValidDays?: number
}

export const DEFAULT_CA_NAME = 'Gatehouse'
export const DEFAULT_ROOT_VALID_DAYS = 3650
export const DEFAULT_ISSUING_VALID_DAYS = 1825

const CA_KEY_USAGES = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign

export async function createCertificateAuthority(
  opts: CreateCertificateAuthorityOptions,
  deps: { clock: Clock; random: Random },
): Promise<CertificateAuthority> {
  const name = opts.name ?? DEFAULT_CA_NAME
  // 64 (the CN upper bound) minus " Issuing CA"; printable, no control characters.
  if (typeof name !== 'string' || !/^[^\p{Cc}]{1,53}$/u.test(name) || name.trim() !== name) {
    throw new CaNameInvalid(String(name).slice(0, 80))
  }
  const alg = opts.keyAlgorithm ?? DEFAULT_KEY_ALGORITHM
  const now = deps.clock.now()
  const [rootKeys, issuingKeys] = await Promise.all([generateKeyPair(alg), generateKeyPair(alg)])

  const rootValidity = validityWindow(now, opts.rootValidDays ?? DEFAULT_ROOT_VALID_DAYS)
  const rootCert = await signCertificate({
    signingKey: rootKeys.privateKey,
    subject: [{ CN: [`${name} Root CA`] }],
    publicKey: rootKeys.publicKey,
    serial: randomSerial(deps.random),
    ...rootValidity,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGES, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  })

  const issuingValidity = validityWindow(now, opts.issuingValidDays ?? DEFAULT_ISSUING_VALID_DAYS, rootCert.notAfter)
  const issuingCert = await signCertificate({
    signingKey: rootKeys.privateKey,
    issuerName: rootCert.subjectName,
    subject: [{ CN: [`${name} Issuing CA`] }],
    publicKey: issuingKeys.publicKey,
    serial: randomSerial(deps.random),
    ...issuingValidity,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGES, true),
      await x509.SubjectKeyIdentifierExtension.create(issuingKeys.publicKey),
      await authorityKeyIdentifier(rootCert),
    ],
  })

  return {
    root: { certificate: rootCert, privateKey: rootKeys.privateKey },
    issuing: { certificate: issuingCert, privateKey: issuingKeys.privateKey },
  }
}
