import { x509 } from './x509.ts'
import {
  DEFAULT_KEY_ALGORITHM,
  generateKeyPair,
  privateKeyToPem,
  signingAlgorithmFor,
  type CryptoKeyPair,
  type KeyAlgorithm,
} from './keys.ts'

/**
 * PKCS#10 certificate requests, as a device makes them (claim provisioning and renewal over MQTT:
 * docs/device-lifecycle.md). The subject is one CN; the request is signed with the key it carries,
 * ECDSA SHA-256 (P-256) / SHA-384 (P-384) or RSA SHA-256, which is what parseCsr accepts.
 */
export interface CsrRequest {
  commonName: string
  /** the device's key pair (WebCrypto, extractable public key); the private key signs the request */
  keys: CryptoKeyPair
}

/** A PEM "CERTIFICATE REQUEST" for `commonName`, signed with `keys.privateKey`. */
export async function createCsrPem({ commonName, keys }: CsrRequest): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: signingAlgorithmFor(keys.privateKey),
  })
  return csr.toString('pem')
}

export interface KeyAndCsr {
  keys: CryptoKeyPair
  /** the new private key, PKCS#8 PEM (unencrypted: the caller stores it 0600) */
  privateKeyPem: string
  csrPem: string
}

/** A new key pair (P-256 unless told otherwise) and a CSR for `commonName` made from it. */
export async function createKeyAndCsr(opts: { commonName: string; keyAlgorithm?: KeyAlgorithm }): Promise<KeyAndCsr> {
  const keys = await generateKeyPair(opts.keyAlgorithm ?? DEFAULT_KEY_ALGORITHM)
  const [csrPem, privateKeyPem] = await Promise.all([createCsrPem({ commonName: opts.commonName, keys }), privateKeyToPem(keys.privateKey)])
  return { keys, privateKeyPem, csrPem }
}
