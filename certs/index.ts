// certs/: the pure X.509 toolkit. Other folders import only this file (docs/conventions.md §2).

export type { X509Certificate } from '@peculiar/x509'

export { type Clock, clockMs, systemClock } from './clock.ts'
export { type Timers, systemTimers, sleep } from './timers.ts'
export { type Random, cryptoRandom } from './random.ts'
export { capText, capStrings } from './cap-text.ts'
export { unsafeInteger } from './exact-json.ts'
export { type EventThrottle, createEventThrottle } from './event-throttle.ts'
export { type Histogram, createHistogram, observeHistogram } from './histogram.ts'
export { signedHeaders } from './webhook-signature.ts'
export { isPrivateAddress, isLocalHostName, parseAddressRange } from './private-address.ts'
export { type FromSchema, deepFreeze, describeSchemaErrors, schemaDefaults } from './json-schema.ts'
export { newAjv, schemaValidator } from './prebuilt-validators.ts'
export {
  DEVICE_ID_PATTERN_SOURCE,
  isDeviceId,
  assertDeviceId,
  claimIdFromCommonName,
  appNameFromCommonName,
  APP_NAME_PATTERN,
  claimNonceFromClientId,
  isClaimId,
} from './device-id.ts'
export { CLAIM_GRACE_DAYS, issueAppCertificate, issueClaimCertificate } from './claim-certificate.ts'
export { AppNameInvalid, CertInvalid } from './errors.ts'

export {
  type KeyAlgorithm,
  type CryptoKey,
  type CryptoKeyPair,
  type AnyKey,
  KEY_ALGORITHMS,
  type KeySigner,
  keyAlgorithmOf,
  keyGenParams,
  webCryptoParams,
  bindSigner,
  generateKeyPair,
  generateKeyObjects,
  exportPrivateKeyPkcs8,
  privateKeyToPem,
  pkcs8ToPem,
  privateKeyFromPem,
} from './keys.ts'

export {
  type IssuerKeyPair,
  type CertificateAuthority,
  type OperatingCa,
  type CaCertificates,
  createCertificateAuthority,
  issueIssuingCa,
  isIssuedBy,
  assertIssuerUsable,
} from './ca.ts'

export { issueServerCertificate } from './issue-certificate.ts'

export { issueDeviceCertificateDer } from './device-certificate.ts'

export { parseCsr } from './csr.ts'

export { type KeyAndCsr, createKeyAndCsr } from './create-csr.ts'

export { type CrlReason, CRL_REASONS, createCrl } from './crl.ts'
export { crlUrl, issuerKeyId } from './crl-distribution-point.ts'

export {
  certificateToPem,
  crlToPem,
  crlToDer,
  chainPem,
  parseCertificatePem,
  parseCertificatesPem,
  parseCertificateDer,
  toPkcs12,
} from './bundle.ts'

export {
  type PeerIdentity,
  normalizeSerial,
  certificateFingerprint,
  identityFromCertificate,
  identityFromPeerCertificate,
  publicKeySha256,
} from './peer-identity.ts'
