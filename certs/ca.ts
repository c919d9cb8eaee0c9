import { x509 } from './x509.ts'
import type { X509Certificate } from '@peculiar/x509'
import type { Clock } from './clock.ts'
import { CaKeyUnusable, CaNameInvalid } from './errors.ts'
import { assertIssuerValidAt, authorityKeyIdentifier, randomSerial, signCertificate, validityWindow } from './issue-certificate.ts'
import {
  DEFAULT_KEY_ALGORITHM,
  generateKeyPair,
  signerFor,
  signingAlgorithmFor,
  subtle,
  type CryptoKey,
  type CryptoKeyPair,
  type KeyAlgorithm,
} from './keys.ts'
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
  /** the issuing CA that signs everything new */
  issuing: IssuerKeyPair
  /**
   * Issuing CAs replaced by a rotation and not yet expired, newest first: certificates they issued keep
   * working, so they stay in the trust chain and still sign the CRLs for those certificates.
   */
  previous?: readonly IssuerKeyPair[]
}

/**
 * A CA as a running Gatehouse uses it: the root's certificate without its key. Only signing a new
 * issuing CA (`ca rotate`) opens the root key; everything else issues with the issuing CA.
 */
export type OperatingCa = Omit<CertificateAuthority, 'root'> & { root: { certificate: X509Certificate } }

/**
 * A CA's certificates without its keys: what a process that may sign nothing reads at first (the CLI), its
 * keys read when something first signs. An OperatingCa is one.
 */
export interface CaCertificates {
  root: { certificate: X509Certificate }
  issuing: { certificate: X509Certificate }
  previous?: readonly { certificate: X509Certificate }[]
}

export interface CreateCertificateAuthorityOptions {
  /** default 'Gatehouse': subjects become "<name> Root CA" and "<name> Issuing CA" */
  name?: string
  keyAlgorithm?: KeyAlgorithm
  rootValidDays?: number
  issuingValidDays?: number
  /** the root and issuing key pairs, made by the caller (in an HSM, say); else generated with keyAlgorithm */
  keys?: { root: CryptoKeyPair; issuing: CryptoKeyPair }
}

export const DEFAULT_CA_NAME = 'Gatehouse'
export const DEFAULT_ROOT_VALID_DAYS = 3650
export const DEFAULT_ISSUING_VALID_DAYS = 1825

const caKeyUsages = () => x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign

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
  const [rootKeys, issuingKeys] = opts.keys
    ? [opts.keys.root, opts.keys.issuing]
    : await Promise.all([generateKeyPair(alg), generateKeyPair(alg)])

  const rootValidity = validityWindow(now, opts.rootValidDays ?? DEFAULT_ROOT_VALID_DAYS)
  const rootCert = await signCertificate({
    signingKey: rootKeys.privateKey,
    subject: [{ CN: [`${name} Root CA`] }],
    publicKey: rootKeys.publicKey,
    serial: randomSerial(deps.random),
    ...rootValidity,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(caKeyUsages(), true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  })

  const root = { certificate: rootCert, privateKey: rootKeys.privateKey }
  const issuing = await issueIssuingCa(
    root,
    {
      commonName: `${name} Issuing CA`,
      keys: issuingKeys,
      ...(opts.issuingValidDays !== undefined && { validDays: opts.issuingValidDays }),
    },
    deps,
  )
  return { root, issuing, previous: [] }
}

export interface IssuingCaRequest {
  /** the subject CN (default: "<root CN without ' Root CA'> Issuing CA") */
  commonName?: string
  /**
   * An extra subject serialNumber attribute (2.5.4.5), printable: tells issuing CAs that share a CN
   * apart (a rotation sets it), so that name-based chain and CRL lookups never confuse them.
   */
  subjectSerialNumber?: string
  keyAlgorithm?: KeyAlgorithm
  /** a key pair made by the caller; else one is generated with keyAlgorithm */
  keys?: { publicKey: CryptoKey; privateKey: CryptoKey }
  /** default DEFAULT_ISSUING_VALID_DAYS, never past the root's notAfter */
  validDays?: number
}

/** An issuing CA signed by the root (pathLen 0, keyCertSign + cRLSign); the root must be valid now. */
export async function issueIssuingCa(
  root: IssuerKeyPair,
  req: IssuingCaRequest,
  deps: { clock: Clock; random: Random },
): Promise<IssuerKeyPair> {
  const now = deps.clock.now()
  assertIssuerValidAt(root.certificate, now)
  const rootCn = root.certificate.subjectName.getField('CN')[0] ?? DEFAULT_CA_NAME
  const commonName = req.commonName ?? `${rootCn.replace(/ Root CA$/, '')} Issuing CA`
  if (!/^[^\p{Cc}]{1,64}$/u.test(commonName)) throw new CaNameInvalid(commonName.slice(0, 80))
  const serialAttr = req.subjectSerialNumber
  if (serialAttr !== undefined && !/^[A-Za-z0-9 '()+,./:=?-]{1,64}$/.test(serialAttr)) throw new CaNameInvalid(serialAttr.slice(0, 80))
  const keys = req.keys ?? (await generateKeyPair(req.keyAlgorithm ?? DEFAULT_KEY_ALGORITHM))
  const validity = validityWindow(now, req.validDays ?? DEFAULT_ISSUING_VALID_DAYS, root.certificate.notAfter)
  const certificate = await signCertificate({
    signingKey: root.privateKey,
    issuerName: root.certificate.subjectName,
    subject: [{ CN: [commonName] }, ...(serialAttr === undefined ? [] : [{ [SUBJECT_SERIAL_NUMBER_OID]: [serialAttr] }])],
    publicKey: keys.publicKey,
    serial: randomSerial(deps.random),
    ...validity,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(caKeyUsages(), true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await authorityKeyIdentifier(root.certificate),
    ],
  })
  return { certificate, privateKey: keys.privateKey }
}

const SUBJECT_SERIAL_NUMBER_OID = '2.5.4.5'

/**
 * Whether `issuer` issued `cert`, by key identifier (the certificate's AKI = the issuer's SKI), else by
 * name. Cheap (no signature check): for telling apart certificates of CAs that all chain to one root.
 */
export function isIssuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
  if (aki && ski) return aki.toLowerCase() === ski.toLowerCase()
  return cert.issuerName.toString() === issuer.subjectName.toString()
}

const PROBE = new TextEncoder().encode('gatehouse: can this CA key sign?')

/**
 * Whether an issuer can issue now (readiness, GET /readyz): its certificate is valid at `now`
 * (GH_CA_ISSUER_EXPIRED) and its key signs a challenge that its certificate's public key verifies
 * (GH_CA_KEY_UNUSABLE): the key is loaded, usable, and the one the certificate names.
 */
export async function assertIssuerUsable(issuer: IssuerKeyPair, now: Date): Promise<void> {
  assertIssuerValidAt(issuer.certificate, now)
  const params = signingAlgorithmFor(issuer.privateKey)
  let verified: boolean
  try {
    const signature = await signerFor(issuer.privateKey).subtle.sign(params, issuer.privateKey, PROBE)
    verified = await subtle.verify(params, await issuer.certificate.publicKey.export(), signature, PROBE)
  } catch (err) {
    throw new CaKeyUnusable(issuer.certificate.subject, (err as Error).name || 'error', { cause: err })
  }
  if (!verified) throw new CaKeyUnusable(issuer.certificate.subject, 'the key does not match the certificate')
}
