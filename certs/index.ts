// certs/: the pure X.509 toolkit. Other folders import only this file (CONVENTIONS.md §2).

export type { X509Certificate, X509Crl } from '@peculiar/x509'

export { type Clock, systemClock } from './clock.ts'
export { type Timers, systemTimers, sleep } from './timers.ts'
export { type Random, cryptoRandom } from './random.ts'
export { MAX_UNTRUSTED_CHARS, capText, capStrings } from './cap-text.ts'
export { type EventThrottle, createEventThrottle } from './event-throttle.ts'
export {
  DEVICE_ID_PATTERN,
  DEVICE_ID_PATTERN_SOURCE,
  isDeviceId,
  assertDeviceId,
  CLAIM_CN_PREFIX,
  claimIdFromCommonName,
  claimNonceFromClientId,
  CLAIM_ID_PATTERN,
  isClaimId,
} from './device-id.ts'
export { type ClaimCertificateRequest, type ClaimCertificate, CLAIM_GRACE_DAYS, issueClaimCertificate } from './claim-certificate.ts'
export * from './errors.ts'

export {
  type KeyAlgorithm,
  type CryptoKey,
  type CryptoKeyPair,
  type AnyKey,
  KEY_ALGORITHMS,
  DEFAULT_KEY_ALGORITHM,
  isKeyAlgorithm,
  keyAlgorithmOf,
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
  type CreateCertificateAuthorityOptions,
  type IssuingCaRequest,
  DEFAULT_CA_NAME,
  DEFAULT_ROOT_VALID_DAYS,
  DEFAULT_ISSUING_VALID_DAYS,
  createCertificateAuthority,
  issueIssuingCa,
  isIssuedBy,
} from './ca.ts'

export {
  type IssueDeps,
  BACKDATE_MS,
  DEVICE_URI_PREFIX,
  DEFAULT_DEVICE_VALID_DAYS,
  DEFAULT_SERVER_VALID_DAYS,
  DEFAULT_SERVER_COMMON_NAME,
  DEFAULT_SERVER_NAMES,
  issueServerCertificate,
} from './issue-certificate.ts'

export {
  type DeviceCertificateRequest,
  type DeviceCertificateDer,
  issueDeviceCertificate,
  issueDeviceCertificateDer,
} from './device-certificate.ts'

export {
  type ParsedCsr,
  type CsrCandidate,
  type CsrCheck,
  MAX_CSR_BYTES,
  parseCsr,
  csrChecks,
  keyIsAllowed,
  signatureIsValid,
  commonNameIsPresent,
  commonNameIs,
  commonNameIsDeviceId,
} from './csr.ts'

export { type CsrRequest, type KeyAndCsr, createCsrPem, createKeyAndCsr } from './create-csr.ts'

export {
  type CrlReason,
  type CrlEntry,
  CRL_REASONS,
  DEFAULT_CRL_VALID_HOURS,
  isCrlReason,
  crlReasonCode,
  crlNumberOf,
  createCrl,
} from './crl.ts'

export {
  type Pkcs12Request,
  certificateToPem,
  certificateToDer,
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
  type PeerCertificateLike,
  normalizeSerial,
  normalizeFingerprint,
  certificateFingerprint,
  identityFromCertificate,
  identityFromPeerCertificate,
} from './peer-identity.ts'
