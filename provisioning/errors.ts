import createError from '@fastify/error'

// Coded errors of provisioning/ (CONVENTIONS.md §8). Each code has an entry in docs/errors.md.
export const DeviceExists = createError(
  'GH_DEVICE_EXISTS',
  "device '%s' already exists: pick another id, or use 'gatehouse device renew %s' for a new certificate",
  409,
)
export const DeviceNotFound = createError(
  'GH_DEVICE_NOT_FOUND',
  "no device '%s' in the registry: 'gatehouse device list' shows the registered ids",
  404,
)
export const DeviceRevoked = createError(
  'GH_DEVICE_REVOKED',
  "device '%s' is revoked, which is permanent: create a new device with another id",
  409,
)
export const DeviceStateConflict = createError('GH_DEVICE_STATE', "device '%s' is %s: %s", 409)
export const CertificateExists = createError(
  'GH_CERT_EXISTS',
  "a certificate with serial %s or the same fingerprint is already registered",
  409,
)
export const CaNotInitialized = createError(
  'GH_CA_NOT_INITIALIZED',
  "no certificate authority in '%s': run 'gatehouse init --data-dir %s' first",
  500,
)
export const CaPassphraseRequired = createError(
  'GH_CA_PASSPHRASE_REQUIRED',
  'the CA key %s is encrypted: set GATEHOUSE_CA_PASSPHRASE (or GATEHOUSE_CA_PASSPHRASE_FILE) to its passphrase',
  500,
)
export const CaPassphraseWrong = createError(
  'GH_CA_PASSPHRASE_WRONG',
  'the CA key %s does not open with the given passphrase: check GATEHOUSE_CA_PASSPHRASE; nothing was changed',
  500,
)
export const CaKeyUnreadable = createError(
  'GH_CA_KEY_UNREADABLE',
  'the CA file %s is missing or corrupt: restore the data directory from a backup; nothing was changed',
  500,
)
export const CaKeyPermissions = createError(
  'GH_CA_KEY_PERMISSIONS',
  'the key file %s is readable by group or others (mode %s): run chmod 600 on it, then start again',
  500,
)
export const DataDirUnusable = createError('GH_DATA_DIR', "the data directory '%s' cannot be used: %s", 500)
export const StoreWriteFailed = createError(
  'GH_STORE_WRITE_FAILED',
  'the registry could not be written (%s): nothing was changed; check free disk space and permissions of the data directory',
  503,
)
export const StoreSchemaTooNew = createError(
  'GH_STORE_SCHEMA_TOO_NEW',
  'the registry %s has schema version %s, newer than this Gatehouse knows (%s): upgrade Gatehouse',
  500,
)
export const BatchInvalid = createError('GH_BATCH_INVALID', 'invalid batch: %s', 400)
export const OutputExists = createError(
  'GH_OUTPUT_EXISTS',
  "'%s' already exists: Gatehouse never overwrites key material; choose another --out or move it away",
  409,
)
export const BundleNeedsKey = createError(
  'GH_BUNDLE_NEEDS_KEY',
  "device '%s' was issued from a CSR, so Gatehouse has no private key to put in a PKCS#12 file: drop --p12 (the device keeps its own key)",
  400,
)
export const FileUnreadable = createError('GH_FILE_UNREADABLE', "cannot read '%s': %s", 400)
