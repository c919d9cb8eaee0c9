import { createPrivateKey, generateKeyPair as generateNodeKeyPair, KeyObject, sign as nodeSign, webcrypto } from 'node:crypto'
import { KeyAlgorithmUnsupported, KeyInvalid, KeyPassphraseRequired, KeyPassphraseWrong } from './errors.ts'
import * as der from './der.ts'
import { derToPem } from './pem.ts'

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
  return (await subtle.generateKey(keyGenParams(alg), true, ['sign', 'verify'])) as CryptoKeyPair
}

/** WebCrypto generateKey parameters for one of our key algorithms (also what an HSM is asked for). */
export function keyGenParams(alg: KeyAlgorithm): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  if (alg === 'p256' || alg === 'p384') return { name: 'ECDSA', namedCurve: EC_CURVES[alg] }
  return { name: RSA_ALG, modulusLength: RSA_BITS[alg], publicExponent: RSA_EXPONENT, hash: 'SHA-256' }
}

/**
 * A key as WebCrypto or node:crypto holds it. The CA's keys are CryptoKeys (so another WebCrypto provider,
 * an HSM, can hold them); a device key that Gatehouse makes only to hand out may be a KeyObject
 * (generateKeyObjects), which costs the main thread about half as much to make.
 */
export type AnyKey = CryptoKey | KeyObject

/**
 * A new key pair as node:crypto KeyObjects, for keys that are exported and handed out rather than used:
 * batch provisioning makes one per device, and WebCrypto's CryptoKey wrapping is most of its cost.
 */
export async function generateKeyObjects(
  alg: KeyAlgorithm = DEFAULT_KEY_ALGORITHM,
): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  if (!isKeyAlgorithm(alg)) throw new KeyAlgorithmUnsupported(String(alg))
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) => {
      if (err) return reject(err)
      const pair: GeneratedPair = { alg, privateKey }
      generated.set(publicKey, pair)
      generated.set(privateKey, pair)
      resolve({ publicKey, privateKey })
    }
    if (alg === 'p256' || alg === 'p384') generateNodeKeyPair('ec', { namedCurve: EC_CURVES[alg] }, done)
    else generateNodeKeyPair('rsa', { modulusLength: RSA_BITS[alg], publicExponent: 0x10001 }, done)
  })
}

/**
 * The keys generateKeyObjects made, with their algorithm: known without asking OpenSSL again (a KeyObject's
 * asymmetricKeyDetails costs ~40 us a read, and batch provisioning read it several times per device). Only
 * generateKeyObjects adds to it, so a key from anywhere else (a CSR, a file) is always checked.
 */
const generated = new WeakMap<KeyObject, GeneratedPair>()

/**
 * What the two keys of one generated pair share: the algorithm, and the JWK of the private key, exported once
 * for both the certificate's public point and the PKCS#8 (issue 14: the first export of a pair's key costs
 * ~25 us of main-thread CPU, OpenSSL 3 converting it to a legacy EC_KEY, and each key was exported). The JWK
 * keeps `d` only until the PKCS#8 is made (exportPrivateKeyPkcs8), then only the public point's x and y.
 */
interface GeneratedPair {
  alg: KeyAlgorithm
  privateKey: KeyObject
  jwk?: webcrypto.JsonWebKey
}

/** keyAlgorithmOf for either kind of key. */
export function keyAlgorithmOfAny(key: AnyKey): KeyAlgorithm {
  return key instanceof KeyObject ? keyAlgorithmOfKeyObject(key) : keyAlgorithmOf(key)
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

export function isRsaKey(key: AnyKey): boolean {
  if (!(key instanceof KeyObject)) return key.algorithm.name === RSA_ALG
  const alg = generated.get(key)?.alg
  return alg === undefined ? key.asymmetricKeyType === 'rsa' : alg.startsWith('rsa')
}

/**
 * What signs with a CA key: Node's WebCrypto, or the WebCrypto of another provider that holds the key
 * and never lets it out (an HSM through PKCS#11; provisioning/ca/pkcs11-token.ts). Only `sign` is asked
 * of it: public keys are always Node's, so everything else stays with Node.
 */
export interface KeySigner {
  subtle: { sign(algorithm: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer> }
}

const signers = new WeakMap<CryptoKey, KeySigner>()

/** Makes `key` (a key of another WebCrypto provider) sign through `signer` wherever certs/ signs with it. */
export function bindSigner<K extends CryptoKey>(key: K, signer: KeySigner): K {
  signers.set(key, signer)
  return key
}

/** The provider that signs with `key`: the one bound to it, else Node's WebCrypto. */
export function signerFor(key: CryptoKey): KeySigner {
  return signers.get(key) ?? (webcrypto as unknown as KeySigner)
}

const HASH_NAMES: Record<string, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384' }
const nodeKeys = new WeakMap<CryptoKey, KeyObject>()

/**
 * Signs `data` with an issuer key as an X.509 signature wants it: ECDSA as a DER Ecdsa-Sig-Value, RSA as
 * PKCS#1 v1.5. A key of Node's own WebCrypto signs with node:crypto's sign() on its KeyObject (made once
 * per key), on the thread pool: WebCrypto's job set-up and its r || s form cost the main thread several
 * times more (issue 14). A key bound to another provider (bindSigner: an HSM) signs through it.
 */
export async function signDer(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  const { name, hash } = signingAlgorithmFor(key)
  const bound = signers.get(key)
  const keyObject = bound === undefined ? nodeKeyOf(key) : undefined
  if (keyObject === undefined) {
    const signature = new Uint8Array(await (bound ?? signerFor(key)).subtle.sign({ name, hash }, key, data))
    if (name !== 'ECDSA') return signature
    const half = hash === 'SHA-384' ? 48 : 32
    if (signature.length !== 2 * half) throw new RangeError(`ECDSA signature of ${signature.length} bytes, expected ${2 * half}`)
    return der.ecdsaP1363ToDer(signature)
  }
  return new Promise((resolve, reject) =>
    nodeSign(HASH_NAMES[hash] ?? hash, data, { key: keyObject, dsaEncoding: 'der' }, (err, signature) =>
      err ? reject(err) : resolve(new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength)),
    ),
  )
}

/** The node:crypto KeyObject of a key of Node's WebCrypto; undefined for a key of another provider. */
function nodeKeyOf(key: CryptoKey): KeyObject | undefined {
  let keyObject = nodeKeys.get(key)
  if (keyObject === undefined) {
    try {
      keyObject = KeyObject.from(key)
    } catch {
      return undefined // not Node's CryptoKey
    }
    nodeKeys.set(key, keyObject)
  }
  return keyObject
}

/** The signature algorithm an issuer key signs with: ECDSA with SHA-256 (P-256) / SHA-384 (P-384), RSA with SHA-256. */
export function signingAlgorithmFor(key: CryptoKey): webcrypto.Algorithm & { hash: string } {
  const alg = keyAlgorithmOf(key)
  if (alg === 'p256' || alg === 'p384') return { name: 'ECDSA', hash: EC_HASHES[EC_CURVES[alg]] }
  return { name: RSA_ALG, hash: 'SHA-256' }
}

/**
 * PKCS#8 DER of a private key. An EC key is encoded here from its JWK, exactly as OpenSSL writes it
 * (test/unit/certs/keys.test.ts compares the bytes): OpenSSL 3's encoder costs ~60 µs of CPU a key,
 * the JWK export a few µs, and batch provisioning exports one per device. RSA keys go through WebCrypto.
 */
export async function exportPrivateKeyPkcs8(key: AnyKey): Promise<Uint8Array> {
  if (ecCurveOf(key) !== undefined && key.type === 'private') {
    const jwk = await jwkOf(key, 'private')
    if (jwk.d !== undefined && jwk.x !== undefined && jwk.y !== undefined) {
      const pkcs8 = ecPrivateKeyPkcs8(ecCurveOf(key)!, fromBase64Url(jwk.d), uncompressedPoint(jwk.x, jwk.y))
      const pair = key instanceof KeyObject ? generated.get(key) : undefined
      if (pair !== undefined) pair.jwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } // the point stays, d goes
      return pkcs8
    }
  }
  if (key instanceof KeyObject) return new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }))
  return new Uint8Array(await subtle.exportKey('pkcs8', key))
}

/**
 * The public point of an EC key (public or private) as SEC1 uncompressed bytes (04 || x || y): the
 * subjectPublicKey of its SPKI. Read from the JWK, which is exported without the thread pool.
 */
export async function ecPublicPoint(key: AnyKey): Promise<Uint8Array> {
  if (ecCurveOf(key) === undefined) throw new KeyInvalid(`expected a P-256 or P-384 key`)
  const jwk = await jwkOf(key)
  if (jwk.x === undefined || jwk.y === undefined) throw new KeyInvalid('EC key without a public point')
  return uncompressedPoint(jwk.x, jwk.y)
}

/** The DER SubjectPublicKeyInfo of a public key. */
export async function exportSpki(key: AnyKey): Promise<Uint8Array> {
  if (key instanceof KeyObject) return new Uint8Array(key.export({ type: 'spki', format: 'der' }))
  return new Uint8Array(await subtle.exportKey('spki', key))
}

/**
 * A key's JWK; for a key of a generated pair, the pair's one export (GeneratedPair), exported again only when
 * the private part is wanted after it was dropped.
 */
async function jwkOf(key: AnyKey, wanted: 'public' | 'private' = 'public'): Promise<webcrypto.JsonWebKey> {
  if (!(key instanceof KeyObject)) return subtle.exportKey('jwk', key)
  const pair = generated.get(key)
  if (pair === undefined) return key.export({ format: 'jwk' })
  if (pair.jwk === undefined || (wanted === 'private' && pair.jwk.d === undefined)) pair.jwk = pair.privateKey.export({ format: 'jwk' })
  return pair.jwk
}

const EC_CURVE_OIDS = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34' } as const
type EcCurve = keyof typeof EC_CURVE_OIDS

/** 'P-256' / 'P-384' for our EC keys, undefined for any other key. */
export function ecCurveOf(key: AnyKey): EcCurve | undefined {
  if (key instanceof KeyObject) {
    const alg = generated.get(key)?.alg
    if (alg !== undefined) return alg === 'p256' || alg === 'p384' ? EC_CURVES[alg] : undefined
    if (key.asymmetricKeyType !== 'ec') return undefined
    const curve = key.asymmetricKeyDetails?.namedCurve
    return curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined
  }
  const a = key.algorithm as Partial<webcrypto.EcKeyAlgorithm>
  return a.name === 'ECDSA' && (a.namedCurve === 'P-256' || a.namedCurve === 'P-384') ? a.namedCurve : undefined
}

/** The DER AlgorithmIdentifier of an EC public key on one of our curves (SPKI and PKCS#8 share it). */
export function ecAlgorithmIdentifier(curve: EcCurve): Uint8Array {
  return EC_ALGORITHM_IDENTIFIERS[curve]
}

const EC_ALGORITHM_IDENTIFIERS: Record<EcCurve, Uint8Array> = {
  'P-256': der.sequence(der.oid('1.2.840.10045.2.1'), der.oid(EC_CURVE_OIDS['P-256'])),
  'P-384': der.sequence(der.oid('1.2.840.10045.2.1'), der.oid(EC_CURVE_OIDS['P-384'])),
}
const PKCS8_VERSION = der.smallInteger(0)
const EC_PRIVATE_KEY_VERSION = der.smallInteger(1)

/**
 * PrivateKeyInfo { 0, ecPublicKey + curve, OCTET STRING ECPrivateKey { 1, d, [1] publicKey } } (RFC 5208,
 * RFC 5915), without the optional [0] parameters, which the AlgorithmIdentifier already names: OpenSSL's form.
 */
function ecPrivateKeyPkcs8(curve: EcCurve, d: Uint8Array, point: Uint8Array): Uint8Array {
  const ecPrivateKey = der.sequence(EC_PRIVATE_KEY_VERSION, der.octetString(d), der.explicit(1, der.bitString(point)))
  return der.standalone(der.sequence(PKCS8_VERSION, EC_ALGORITHM_IDENTIFIERS[curve], der.octetString(ecPrivateKey)))
}

function uncompressedPoint(x: string, y: string): Uint8Array {
  const xb = fromBase64Url(x)
  const yb = fromBase64Url(y)
  return der.concat([Uint8Array.of(4), xb, yb])
}

function fromBase64Url(s: string): Uint8Array {
  const b = Buffer.from(s, 'base64url')
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/** PKCS#8 PEM; "ENCRYPTED PRIVATE KEY" (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) when a passphrase is given. */
export async function privateKeyToPem(key: CryptoKey, passphrase?: string): Promise<string> {
  const der = await exportPrivateKeyPkcs8(key)
  if (passphrase === undefined) return pkcs8ToPem(der)
  const keyObject = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
  return keyObject.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string
}

/** Unencrypted PKCS#8 DER as "BEGIN PRIVATE KEY" PEM (what OpenSSL writes), without parsing the key. */
export function pkcs8ToPem(pkcs8: Uint8Array): string {
  return derToPem(pkcs8, 'PRIVATE KEY')
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
    keyObject = createPrivateKey(encrypted ? { key: pem, format: 'pem', passphrase: opts.passphrase } : { key: pem, format: 'pem' })
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
  const known = generated.get(key)?.alg
  if (known !== undefined) return known
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
  throw new KeyAlgorithmUnsupported(`${key.asymmetricKeyType ?? '?'} ${details.namedCurve ?? details.modulusLength ?? ''}`.trim())
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
