import { createPrivateKey, webcrypto, type KeyObject } from 'node:crypto'
import { KeyAlgorithmUnsupported, KeyInvalid, KeyPassphraseRequired, KeyPassphraseWrong } from './errors.ts'

export const subtle = webcrypto.subtle

// tsconfig has no DOM lib, so the WebCrypto types come from node:crypto. Other folders import these.
export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair

export type KeyAlgorithm = 'p256' | 'p384' | 'rsa2048' | 'rsa3072' | 'rsa4096'
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = Object.freeze(['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096'])
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'p256'

const EC_CURVES = { p256: 'P-256', p384: 'P-384' } as const
const EC_HASHES = { 'P-256': 'SHA-256', 'P-384': 'SHA-384' } as const
const RSA_BITS = { rsa2048: 2048, rsa3072: 3072, rsa4096: 4096 } as const
const RSA_EXPONENT = new Uint8Array([1, 0, 1])
const RSA_ALG = 'RSASSA-PKCS1-v1_5'

export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value)
}

/** WebCrypto import/generate parameters for one of our key algorithms. */
export function webCryptoParams(alg: KeyAlgorithm): webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams {
  if (alg === 'p256' || alg === 'p384') return { name: 'ECDSA', namedCurve: EC_CURVES[alg] }
  return { name: RSA_ALG, hash: 'SHA-256' }
}

/** A new extractable sign/verify key pair (ECDSA for P-256/P-384, RSASSA-PKCS1-v1_5 SHA-256 for RSA). */
export async function generateKeyPair(alg: KeyAlgorithm = DEFAULT_KEY_ALGORITHM): Promise<CryptoKeyPair> {
  if (!isKeyAlgorithm(alg)) throw new KeyAlgorithmUnsupported(String(alg))
  const params =
    alg === 'p256' || alg === 'p384'
      ? { name: 'ECDSA', namedCurve: EC_CURVES[alg] }
      : { name: RSA_ALG, modulusLength: RSA_BITS[alg], publicExponent: RSA_EXPONENT, hash: 'SHA-256' }
  return (await subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair
}

/** Which of our algorithms a WebCrypto key (public or private) uses; GH_KEY_ALGORITHM_UNSUPPORTED otherwise. */
export function keyAlgorithmOf(key: CryptoKey): KeyAlgorithm {
  const a = key.algorithm as Partial<webcrypto.EcKeyAlgorithm & webcrypto.RsaHashedKeyAlgorithm>
  if (a.name === 'ECDSA' && a.namedCurve === 'P-256') return 'p256'
  if (a.name === 'ECDSA' && a.namedCurve === 'P-384') return 'p384'
  if (a.name === RSA_ALG && a.modulusLength !== undefined) {
    const alg = `rsa${a.modulusLength}`
    if (isKeyAlgorithm(alg)) return alg
  }
  throw new KeyAlgorithmUnsupported(`${a.name ?? '?'} ${a.namedCurve ?? a.modulusLength ?? ''}`.trim())
}

export function isRsaKey(key: CryptoKey): boolean {
  return key.algorithm.name === RSA_ALG
}

/** The signature algorithm an issuer key signs with: ECDSA with SHA-256 (P-256) / SHA-384 (P-384), RSA with SHA-256. */
export function signingAlgorithmFor(key: CryptoKey): webcrypto.Algorithm & { hash: string } {
  const alg = keyAlgorithmOf(key)
  if (alg === 'p256' || alg === 'p384') return { name: 'ECDSA', hash: EC_HASHES[EC_CURVES[alg]] }
  return { name: RSA_ALG, hash: 'SHA-256' }
}

export async function exportPrivateKeyPkcs8(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle.exportKey('pkcs8', key))
}

/** PKCS#8 PEM; "ENCRYPTED PRIVATE KEY" (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) when a passphrase is given. */
export async function privateKeyToPem(key: CryptoKey, passphrase?: string): Promise<string> {
  const der = Buffer.from(await exportPrivateKeyPkcs8(key))
  const keyObject = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  if (passphrase === undefined) return keyObject.export({ type: 'pkcs8', format: 'pem' }) as string
  return keyObject.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string
}

function isEncryptedPem(pem: string): boolean {
  return /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(pem) || /Proc-Type:\s*4,\s*ENCRYPTED/.test(pem)
}

/**
 * Reads a PEM private key (PKCS#8, encrypted PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY")
 * into an extractable WebCrypto signing key, detecting its algorithm.
 */
export async function privateKeyFromPem(pem: string, opts: { passphrase?: string } = {}): Promise<CryptoKey> {
  if (typeof pem !== 'string' || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new KeyInvalid('no "BEGIN ... PRIVATE KEY" PEM block')
  }
  const encrypted = isEncryptedPem(pem)
  if (encrypted && opts.passphrase === undefined) throw new KeyPassphraseRequired()
  let keyObject: KeyObject
  try {
    keyObject = createPrivateKey(
      encrypted ? { key: pem, format: 'pem', passphrase: opts.passphrase } : { key: pem, format: 'pem' },
    )
  } catch (err) {
    if (encrypted) throw new KeyPassphraseWrong({ cause: err })
    throw new KeyInvalid(errorText(err), { cause: err })
  }
  const alg = keyAlgorithmOfKeyObject(keyObject)
  const der = keyObject.export({ type: 'pkcs8', format: 'der' })
  try {
    return await subtle.importKey('pkcs8', der, webCryptoParams(alg), true, ['sign'])
  } catch (err) {
    throw new KeyInvalid(errorText(err), { cause: err })
  }
}

/** Our algorithm for a node:crypto key (private or public); undefined when it is none of ours. */
export function keyAlgorithmOfNodeKey(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'p256'
    if (details.namedCurve === 'secp384r1') return 'p384'
    return undefined
  }
  if (key.asymmetricKeyType === 'rsa') {
    const alg = `rsa${details.modulusLength ?? 0}`
    return isKeyAlgorithm(alg) ? alg : undefined
  }
  return undefined
}

function keyAlgorithmOfKeyObject(key: KeyObject): KeyAlgorithm {
  const alg = keyAlgorithmOfNodeKey(key)
  if (alg !== undefined) return alg
  const details = key.asymmetricKeyDetails ?? {}
  throw new KeyAlgorithmUnsupported(
    `${key.asymmetricKeyType ?? '?'} ${details.namedCurve ?? details.modulusLength ?? ''}`.trim(),
  )
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
