// The one door to @peculiar/x509 for certs/. The library (with its ASN.1 schemas, tsyringe and the
// reflect-metadata polyfill its CommonJS build needs) costs a CLI call ~450 ms of CPU to load, and most
// commands never sign or parse a certificate in depth: `x509` loads it on first use (issue 14), wired to
// Node's WebCrypto once. Modules in certs/ take values from `x509` here, only inside functions (never at
// module level, or importing the module would load the library); `import type` from '@peculiar/x509' is
// fine anywhere. Certificates read at start-up are deferred (parseCertificatesPem(pem, { defer: true }),
// certs/bundle.ts): node:crypto's X509Certificate checks them at once and this library parses one only
// when a property of it is first read.
import { webcrypto } from 'node:crypto'
import { createRequire } from 'node:module'
import type * as X509 from '@peculiar/x509'
import { signerFor, type CryptoKey } from './keys.ts'

type X509Crypto = Parameters<typeof X509.cryptoProvider.set>[0]

let loaded: typeof X509 | undefined
function load(): typeof X509 {
  if (loaded === undefined) {
    // the CommonJS build is what `import` resolved to as well (the package has no "exports"): one instance
    const require = createRequire(import.meta.url)
    require('reflect-metadata')
    const lib = require('@peculiar/x509') as typeof X509
    lib.cryptoProvider.set(webcrypto as unknown as X509Crypto)
    loaded = lib
  }
  return loaded
}

/** @peculiar/x509, loaded when a property is first read. */
const x509 = new Proxy({} as typeof X509, { get: (_target, key) => load()[key as keyof typeof X509] })

/**
 * The crypto argument of @peculiar/x509's generators for a signing key: the key's signer (certs/keys.ts).
 * The generators ask it only to sign, since the public key is passed as SPKI bytes (signCertificate).
 */
export function generatorCrypto(signingKey: CryptoKey): X509Crypto {
  return signerFor(signingKey) as unknown as X509Crypto
}

export { x509 }
