import createError from '@fastify/error'

// Coded errors of certs/ (docs/conventions.md §8). Each code has an entry in docs/errors.md.
// Messages say what was wrong and what to do; tests assert on `code` only.

export const InvalidDeviceId = createError(
  'GH_DEVICE_ID_INVALID',
  "invalid device id '%s': use 1-64 characters of A-Z a-z 0-9 . _ - (no slashes, spaces or MQTT wildcards)",
  400,
)

export const ClaimIdInvalid = createError(
  'GH_CLAIM_ID_INVALID',
  "invalid claim id '%s': use 3-41 characters of a-z 0-9 -, starting with a letter or digit",
  400,
)
export const AppNameInvalid = createError(
  'GH_APP_NAME_INVALID',
  "invalid app name '%s': use 3-41 characters of a-z 0-9 -, starting with a letter or digit",
  400,
)

// keys.ts
export const KeyAlgorithmUnsupported = createError(
  'GH_KEY_ALGORITHM_UNSUPPORTED',
  "unsupported key algorithm '%s': use one of p256, p384, rsa2048, rsa3072, rsa4096",
  400,
)
export const KeyPassphraseRequired = createError(
  'GH_KEY_PASSPHRASE_REQUIRED',
  'the private key is encrypted: supply its passphrase (e.g. GATEHOUSE_CA_PASSPHRASE)',
  400,
)
export const KeyPassphraseWrong = createError(
  'GH_KEY_PASSPHRASE_WRONG',
  'the passphrase does not decrypt the private key: check the passphrase (or that the key file is intact)',
  400,
)
export const KeyInvalid = createError(
  'GH_KEY_INVALID',
  'the private key could not be read (%s): supply a PEM private key (PKCS#8, SEC1 or PKCS#1)',
  400,
)

// ca.ts, issue-certificate.ts
export const CaNameInvalid = createError(
  'GH_CA_NAME_INVALID',
  "invalid CA name '%s': use 1-53 printable characters (it becomes '<name> Root CA' / '<name> Issuing CA')",
  400,
)
export const CertValidityInvalid = createError(
  'GH_CERT_VALIDITY_INVALID',
  "invalid validity '%s': use a positive number (of days for certificates, of hours for CRLs)",
  400,
)
export const CaIssuerExpired = createError(
  'GH_CA_ISSUER_EXPIRED',
  "issuer '%s' is not valid at %s (it is valid %s): rotate or renew the CA before issuing",
  500,
)
export const CaKeyUnusable = createError(
  'GH_CA_KEY_UNUSABLE',
  "the key of CA '%s' cannot sign for its certificate (%s): restore the CA files from a backup, or rotate the CA",
  500,
)
export const CertHostnameInvalid = createError(
  'GH_CERT_HOSTNAME_INVALID',
  "invalid server hostname '%s': use a DNS name (letters, digits, '-', '.', optional leading '*.') or an IP address",
  400,
)
export const CertInvalid = createError(
  'GH_CERT_INVALID',
  'not a valid X.509 certificate (%s): supply one PEM block "-----BEGIN CERTIFICATE-----" or DER bytes',
  400,
)

// csr.ts
export const CsrUnparsable = createError(
  'GH_CSR_UNPARSABLE',
  'the CSR could not be parsed (%s): send a PKCS#10 request as PEM ("BEGIN CERTIFICATE REQUEST") or DER',
  400,
)
export const CsrBadSignature = createError(
  'GH_CSR_BAD_SIGNATURE',
  'the CSR signature is not valid (%s): sign the request with the private key of the public key it carries',
  400,
)
export const CsrWeakKey = createError(
  'GH_CSR_WEAK_KEY',
  'the CSR key is too weak (%s): use RSA of at least 2048 bits, or EC P-256 / P-384',
  400,
)
export const CsrKeyUnsupported = createError(
  'GH_CSR_KEY_UNSUPPORTED',
  'the CSR key type is not supported (%s): use EC P-256 / P-384 or RSA 2048 / 3072 / 4096',
  400,
)
export const CsrCnMissing = createError(
  'GH_CSR_CN_MISSING',
  'the CSR subject has no CN: put the device id in the subject CN (e.g. -subj /CN=<device-id>)',
  400,
)
export const CsrCnMultiple = createError(
  'GH_CSR_CN_MULTIPLE',
  'the CSR subject has %s CNs: put exactly one CN, the device id, in the subject',
  400,
)
export const CsrCnMismatch = createError('GH_CSR_CN_MISMATCH', "CSR CN '%s' is not the expected '%s'", 400)

// crl.ts
export const CrlReasonInvalid = createError(
  'GH_CRL_REASON_INVALID',
  "unknown revocation reason '%s': use an RFC 5280 name such as keyCompromise, superseded or cessationOfOperation",
  400,
)
export const CrlNumberInvalid = createError(
  'GH_CRL_NUMBER_INVALID',
  "invalid CRL number '%s': use a non-negative integer below 2^159 that grows with every CRL",
  400,
)

// peer-identity.ts
export const SerialInvalid = createError(
  'GH_SERIAL_INVALID',
  "invalid certificate serial '%s': use hex digits (colons allowed), e.g. 4f1a09",
  400,
)
export const FingerprintInvalid = createError(
  'GH_FINGERPRINT_INVALID',
  "invalid fingerprint '%s': use the SHA-256 of the certificate DER as 64 hex digits (colons allowed)",
  400,
)

// bundle.ts
export const BundleKeyMismatch = createError(
  'GH_BUNDLE_KEY_MISMATCH',
  'the private key does not match the certificate public key: bundle the key the certificate was issued for',
  400,
)
