import {
  bindSigner,
  keyAlgorithmOf,
  keyGenParams,
  webCryptoParams,
  type CryptoKey,
  type CryptoKeyPair,
  type KeyAlgorithm,
  type KeySigner,
} from '../../certs/index.ts'
import { webcrypto } from 'node:crypto'
import {
  CaKeyUnreadable,
  Pkcs11KeyNotFound,
  Pkcs11ModuleUnusable,
  Pkcs11OperationFailed,
  Pkcs11PinRequired,
  Pkcs11PinWrong,
  Pkcs11TokenNotFound,
} from '../errors.ts'

/** Which PKCS#11 module and token (by label) hold the CA keys. */
export interface Pkcs11Location {
  module: string
  token: string
}

/**
 * What the data directory stores for a CA key in a token, in place of the key (ca/root.key,
 * ca/issuing.key, ca/previous/<serial>/issuing.key): where it is and which it is. Never the PIN.
 */
export interface Pkcs11KeyReference extends Pkcs11Location {
  /** CKA_ID, hex */
  id: string
  /** CKA_LABEL */
  label: string
  keyAlgorithm: KeyAlgorithm
}

/** A logged-in token: makes non-extractable CA keys in it and finds them again by reference. */
export interface Pkcs11Token {
  generateKeyPair(alg: KeyAlgorithm, label: string): Promise<{ keys: CryptoKeyPair; reference: Pkcs11KeyReference }>
  privateKey(reference: Pkcs11KeyReference, path: string): Promise<CryptoKey>
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** A key file holds a reference when it is JSON (a key is PEM). */
export function isKeyReference(text: string): boolean {
  return text.trimStart().startsWith('{')
}

export function keyReferenceText(reference: Pkcs11KeyReference): string {
  return `${JSON.stringify({ pkcs11: reference }, null, 2)}\n`
}

export function parseKeyReference(text: string, path: string): Pkcs11KeyReference {
  let ref: Partial<Pkcs11KeyReference> | undefined
  try {
    ref = (JSON.parse(text) as { pkcs11?: Partial<Pkcs11KeyReference> }).pkcs11
  } catch (err) {
    throw new CaKeyUnreadable(path, { cause: err })
  }
  const fields = [ref?.module, ref?.token, ref?.id, ref?.label, ref?.keyAlgorithm]
  if (!fields.every((f) => typeof f === 'string' && f !== '') || !/^[0-9a-f]+$/.test(ref?.id ?? ''))
    throw new CaKeyUnreadable(path, {
      cause: new Error('not a PKCS#11 key reference: expected {"pkcs11": {module, token, id, label, keyAlgorithm}}'),
    })
  return ref as Pkcs11KeyReference
}

// One login per module and token for the whole process (a token's login state is per application anyway).
const opened = new Map<string, Promise<Pkcs11Token>>()

/**
 * Opens the token labelled `location.token` in the PKCS#11 module and logs in with the PIN. The
 * module (node-webcrypto-p11 and its native pkcs11js) loads only here, so file-based CAs never load it.
 */
export function openPkcs11Token(location: Pkcs11Location, pin: string | undefined): Promise<Pkcs11Token> {
  const key = `${location.module}\0${location.token}`
  let token = opened.get(key)
  if (!token) {
    token = login(location, pin)
    opened.set(key, token)
    token.catch(() => opened.delete(key)) // a failed login is not kept: the next call tries again
  }
  return token
}

async function login(location: Pkcs11Location, pin: string | undefined): Promise<Pkcs11Token> {
  const { module, token: label } = location
  if (pin === undefined || pin === '') throw new Pkcs11PinRequired(label)
  const [graphene, { Crypto }] = await Promise.all([import('graphene-pk11'), import('node-webcrypto-p11')])
  let slots: import('graphene-pk11').SlotCollection
  try {
    const mod = graphene.Module.load(module, module)
    try {
      mod.initialize()
    } catch (err) {
      if (!/CRYPTOKI_ALREADY_INITIALIZED/.test(errorText(err))) throw err
    }
    slots = mod.getSlots(true)
  } catch (err) {
    throw new Pkcs11ModuleUnusable(module, errorText(err), { cause: err })
  }
  const labels = Array.from({ length: slots.length }, (_, i) => slots.items(i).getToken().label.trim())
  const slot = labels.indexOf(label)
  if (slot < 0) throw new Pkcs11TokenNotFound(label, module, labels.filter(Boolean).join(', ') || 'none')
  let crypto: InstanceType<typeof Crypto>
  try {
    crypto = new Crypto({ library: module, slot, readWrite: true, pin })
  } catch (err) {
    throw new Pkcs11PinWrong(label, errorText(err).replace(/\s+/g, ' ').slice(0, 80), { cause: err })
  }
  // PKCS#11 runs one operation at a time on a session (two at once fail with CKR_GENERAL_ERROR or worse):
  // every call into the token takes its turn
  let tail: Promise<unknown> = Promise.resolve()
  const inTurn = <T>(operation: () => Promise<T>): Promise<T> => {
    const run = tail.then(operation)
    tail = run.catch(() => undefined)
    return run
  }
  const signer: KeySigner = {
    subtle: { sign: (algorithm, key, data) => inTurn(() => crypto.subtle.sign(algorithm as webcrypto.EcdsaParams, key as never, data)) },
  }
  return {
    async generateKeyPair(alg, keyLabel) {
      let pair: CryptoKeyPair
      try {
        const params = { ...keyGenParams(alg), token: true, sensitive: true, label: keyLabel }
        pair = (await inTurn(() => crypto.subtle.generateKey(params, false, ['sign', 'verify']))) as unknown as CryptoKeyPair
      } catch (err) {
        throw new Pkcs11OperationFailed(`generate a ${alg} key in token '${label}'`, errorText(err), { cause: err })
      }
      const spki = await inTurn(() => crypto.subtle.exportKey('spki', pair.publicKey as never))
      const id = Buffer.from((pair.privateKey as unknown as { p11Object: { id: Buffer } }).p11Object.id).toString('hex')
      return {
        // the public key as Node's (certificates and checks use it); the private key signs in the token
        keys: {
          publicKey: await webcrypto.subtle.importKey('spki', spki, webCryptoParams(alg), true, ['verify']),
          privateKey: bindSigner(pair.privateKey, signer),
        },
        reference: { module, token: label, id, label: keyLabel, keyAlgorithm: alg },
      }
    },
    async privateKey(reference, path) {
      const index = (await inTurn(() => crypto.keyStorage.keys())).find((k) => k.startsWith('private-') && k.endsWith(`-${reference.id}`))
      if (index === undefined) throw new Pkcs11KeyNotFound(`'${reference.label}' (id ${reference.id})`, path, label)
      const key = await inTurn(() => crypto.keyStorage.getItem(index, webCryptoParams(reference.keyAlgorithm), false, ['sign']))
      keyAlgorithmOf(key as unknown as CryptoKey) // a key of an algorithm we do not sign with: GH_KEY_ALGORITHM_UNSUPPORTED
      return bindSigner(key as unknown as CryptoKey, signer)
    },
  }
}
