import { createPublicKey, type KeyObject } from 'node:crypto'
import { x509 } from './x509.ts'
import type * as X509 from '@peculiar/x509'
import { APP_CN_PREFIX, assertDeviceId } from './device-id.ts'
import { CsrBadSignature, CsrCnMismatch, CsrCnMissing, CsrCnMultiple, CsrKeyUnsupported, CsrUnparsable, CsrWeakKey } from './errors.ts'
import { errorText, keyAlgorithmOfNodeKey, subtle, webCryptoParams, type CryptoKey, type KeyAlgorithm } from './keys.ts'

/** A CSR that passed every check: what the authority needs to issue a device certificate. */
export interface ParsedCsr {
  commonName: string
  /** a WebCrypto verify key (ECDSA or RSASSA-PKCS1-v1_5), ready for issueDeviceCertificate */
  publicKey: CryptoKey
  keyAlgorithm: KeyAlgorithm
  der: Uint8Array
}

/** A parsed, not yet checked CSR, as the checks see it. */
export interface CsrCandidate {
  request: X509.Pkcs10CertificateRequest
  /** node:crypto view of the subject public key; null when Node cannot read the key type */
  key: KeyObject | null
  commonNames: readonly string[]
}

/** One rule about a CSR: throws one coded error, or returns. */
export type CsrCheck = (csr: CsrCandidate) => void | Promise<void>

/** Largest CSR we read; an RSA-4096 CSR is under 2 KiB. */
export const MAX_CSR_BYTES = 64 * 1024
const ALLOWED_SIGNATURE_HASHES = new Set(['SHA-256', 'SHA-384', 'SHA-512'])
const MIN_RSA_BITS = 2048

/** The key is EC P-256 / P-384 or RSA 2048 / 3072 / 4096. Runs first: other checks need a known key. */
export const keyIsAllowed: CsrCheck = ({ key }) => {
  if (key === null) throw new CsrKeyUnsupported('unknown public key algorithm')
  const type = key.asymmetricKeyType ?? 'unknown'
  const details = key.asymmetricKeyDetails ?? {}
  if (type === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new CsrWeakKey(`RSA ${details.modulusLength ?? '?'} bits`)
  }
  if (keyAlgorithmOfNodeKey(key) === undefined) {
    throw new CsrKeyUnsupported(
      type === 'ec' ? `EC curve ${details.namedCurve ?? '?'}` : type === 'rsa' ? `RSA ${details.modulusLength} bits` : type,
    )
  }
}

/** The CSR is signed, with SHA-256 or stronger, by the key it carries (proof of possession). */
export const signatureIsValid: CsrCheck = async ({ request }) => {
  let ok: boolean
  try {
    const hash = (request.signatureAlgorithm as { hash?: { name?: string } }).hash?.name ?? '?'
    if (!ALLOWED_SIGNATURE_HASHES.has(hash.toUpperCase())) {
      throw new CsrBadSignature(`signature hash ${hash} is not allowed; use SHA-256 or stronger`)
    }
    ok = await request.verify()
  } catch (err) {
    if (err instanceof CsrBadSignature) throw err
    throw new CsrBadSignature(errorText(err), { cause: err })
  }
  if (!ok) throw new CsrBadSignature('the signature does not match the request content and public key')
}

/** The subject holds exactly one CN. */
export const commonNameIsPresent: CsrCheck = ({ commonNames }) => {
  if (commonNames.length === 0 || commonNames[0] === '') throw new CsrCnMissing()
  if (commonNames.length > 1) throw new CsrCnMultiple(commonNames.length)
}

/** The CN is the device id the caller expects (when it expects one). */
export const commonNameIs =
  (expectedDeviceId: string | undefined): CsrCheck =>
  ({ commonNames }) => {
    const cn = commonNames[0] ?? ''
    if (expectedDeviceId !== undefined && cn !== expectedDeviceId) {
      throw new CsrCnMismatch(cn.slice(0, 80), expectedDeviceId.slice(0, 80))
    }
  }

/** The CN is a valid device id (GH_DEVICE_ID_INVALID). */
export const commonNameIsDeviceId: CsrCheck = ({ commonNames }) => {
  assertDeviceId(commonNames[0])
}

/** The checks parseCsr runs, in order (docs/conventions.md §5: a new rule is one line plus one test). */
export const csrChecks = (opts: { expectedDeviceId?: string; expectedAppName?: string } = {}): CsrCheck[] => [
  keyIsAllowed,
  signatureIsValid,
  commonNameIsPresent,
  // an app's CSR names its CN `app:<name>` (certs/device-id.ts), never a device id
  ...(opts.expectedAppName === undefined
    ? [commonNameIs(opts.expectedDeviceId), commonNameIsDeviceId]
    : [commonNameIs(`${APP_CN_PREFIX}${opts.expectedAppName}`)]),
]

/**
 * Reads a PKCS#10 CSR (PEM text as string or bytes, "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST",
 * or DER bytes) and runs csrChecks on it. Each failure is one coded error.
 */
export async function parseCsr(
  input: string | Uint8Array,
  opts: { expectedDeviceId?: string; expectedAppName?: string } = {},
): Promise<ParsedCsr> {
  const der = decodeCsrInput(input)
  const candidate = parseCandidate(der)
  for (const check of csrChecks(opts)) await check(candidate)
  const keyAlgorithm = keyAlgorithmOfNodeKey(candidate.key as KeyObject) as KeyAlgorithm
  const publicKey = await subtle.importKey('spki', candidate.request.publicKey.rawData, webCryptoParams(keyAlgorithm), true, ['verify'])
  return { commonName: candidate.commonNames[0] as string, publicKey, keyAlgorithm, der }
}

const PEM_CSR = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]*)-----END (NEW )?CERTIFICATE REQUEST-----/

function decodeCsrInput(input: string | Uint8Array): Uint8Array {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new CsrUnparsable('expected a PEM string or DER bytes')
  }
  const size = typeof input === 'string' ? input.length : input.byteLength
  if (size === 0) throw new CsrUnparsable('empty input')
  if (size > MAX_CSR_BYTES) throw new CsrUnparsable(`larger than ${MAX_CSR_BYTES} bytes`)
  const text = typeof input === 'string' ? input : looksLikePem(input) ? Buffer.from(input).toString('latin1') : null
  if (text === null) return Uint8Array.from(input as Uint8Array)
  const match = PEM_CSR.exec(text)
  if (match === null) throw new CsrUnparsable('no "BEGIN CERTIFICATE REQUEST" PEM block')
  // which one would be signed is a guess: the caller must send exactly one
  if (PEM_CSR.test(text.slice(match.index + match[0].length))) throw new CsrUnparsable('more than one CERTIFICATE REQUEST block; send one')
  const der = new Uint8Array(Buffer.from((match[2] ?? '').replace(/\s+/g, ''), 'base64'))
  if (der.byteLength === 0) throw new CsrUnparsable('empty PEM block')
  return der
}

function looksLikePem(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 200)).toString('latin1').includes('-----BEGIN')
}

function parseCandidate(der: Uint8Array): CsrCandidate {
  let request: X509.Pkcs10CertificateRequest
  let commonNames: string[]
  let spki: ArrayBuffer
  try {
    request = new x509.Pkcs10CertificateRequest(der.slice().buffer)
    commonNames = request.subjectName.getField('CN')
    spki = request.publicKey.rawData
  } catch (err) {
    throw new CsrUnparsable(errorText(err), { cause: err })
  }
  let key: KeyObject | null = null
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' })
  } catch {
    key = null // an algorithm Node does not know: keyIsAllowed refuses it
  }
  return { request, key, commonNames }
}
