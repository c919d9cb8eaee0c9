// The one door to @peculiar/x509 for certs/: it loads the reflect-metadata polyfill that the library's
// CommonJS build (what Node and tsx resolve) needs, and wires the library to Node's WebCrypto once.
// Modules in certs/ import values from here; `import type` from '@peculiar/x509' is fine anywhere.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

export { x509 }
