// The one door to @peculiar/x509 for certs/: it loads the reflect-metadata polyfill that the library's
// CommonJS build (what Node and tsx resolve) needs, and wires the library to Node's WebCrypto once.
// Modules in certs/ import values from here; `import type` from '@peculiar/x509' is fine anywhere.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { signerFor, type CryptoKey } from './keys.ts'

type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0]
x509.cryptoProvider.set(webcrypto as unknown as X509Crypto)

/**
 * The crypto argument of @peculiar/x509's generators for a signing key: the key's signer (certs/keys.ts).
 * The generators ask it only to sign, since the public key is passed as SPKI bytes (signCertificate).
 */
export function generatorCrypto(signingKey: CryptoKey): X509Crypto {
  return signerFor(signingKey) as unknown as X509Crypto
}

export { x509 }
