import createError from '@fastify/error'

// Coded errors of provisioning/ (docs/conventions.md §8). Each code has an entry in docs/errors.md.
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
  'a certificate with serial %s or the same fingerprint is already registered',
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
export const CaRotationInProgress = createError(
  'GH_CA_ROTATION_IN_PROGRESS',
  'another CA rotation holds %s (%s): wait for it to finish, then check `gatehouse ca show`; nothing was changed',
  409,
)
export const CaRotationPlanCorrupt = createError(
  'GH_CA_ROTATION_PLAN_CORRUPT',
  "the registry's meta row 'ca.rotation.pending' is not a CA rotation plan (%s): it was kept as evidence and nothing was changed; " +
    'decide from ca/issuing.crt and the audit log whether the rotation happened, then clear the row as docs/errors.md says',
  500,
)
export const CaKeyPermissions = createError(
  'GH_CA_KEY_PERMISSIONS',
  'the key file %s is readable by group or others (mode %s): run chmod 600 on it, then start again',
  500,
)
export const CaSyncSecretMissing = createError(
  'GH_CA_SYNC_SECRET_MISSING',
  '%s needs the CA sync secret, and none is configured: make it once (openssl rand -out FILE 32; chmod 600 FILE), copy the same file ' +
    'to every node and set caSyncSecretFile (GATEHOUSE_CA_SYNC_SECRET_FILE) to it; %s',
  500,
)
export const CaSyncSecretWrong = createError(
  'GH_CA_SYNC_SECRET_WRONG',
  "the issuing CA key %s in the shared registry does not open with this node's CA sync secret: caSyncSecretFile must hold the same " +
    'bytes on every node (copy the file of the node that ran ca rotate); %s',
  500,
)
export const CaSyncRefused = createError(
  'GH_CA_SYNC_REFUSED',
  "the CA in the shared registry (meta row 'ca.material') was not installed: %s; this node keeps serving with the CA it has: " +
    'run `gatehouse ca show` here and on the node that ran ca rotate, and compare their root CAs',
  500,
)
export const Pkcs11ModuleUnusable = createError(
  'GH_CA_PKCS11_MODULE_UNUSABLE',
  'the PKCS#11 module %s cannot be loaded (%s): check the path and that the library is installed for this machine; nothing was changed',
  500,
)
export const Pkcs11TokenNotFound = createError(
  'GH_CA_PKCS11_TOKEN_NOT_FOUND',
  "no token labelled '%s' in the PKCS#11 module %s (tokens present: %s): check the label and that the token is plugged in or configured (SoftHSM2: SOFTHSM2_CONF); nothing was changed",
  500,
)
export const Pkcs11PinRequired = createError(
  'GH_CA_PKCS11_PIN_REQUIRED',
  "the CA keys are in the PKCS#11 token '%s': set GATEHOUSE_PKCS11_PIN or GATEHOUSE_PKCS11_PIN_FILE (init also takes --pkcs11-pin-file) to its user PIN",
  500,
)
export const Pkcs11PinWrong = createError(
  'GH_CA_PKCS11_PIN_WRONG',
  "the PIN does not log in to the PKCS#11 token '%s' (%s): check GATEHOUSE_PKCS11_PIN or the PIN file (a token locks after a few wrong PINs); nothing was changed",
  500,
)
export const Pkcs11KeyNotFound = createError(
  'GH_CA_PKCS11_KEY_NOT_FOUND',
  "the CA key %s that %s names is not in the PKCS#11 token '%s': check that it is the token the CA was made in and that the key was not deleted; nothing was changed",
  500,
)
export const Pkcs11OperationFailed = createError(
  'GH_CA_PKCS11_FAILED',
  "the PKCS#11 token refused to %s (%s): check the token's free space and that it supports the key algorithm (P-256, P-384, RSA)",
  500,
)
export const DataDirUnusable = createError('GH_DATA_DIR', "the data directory '%s' cannot be used: %s", 500)
export const StoreWriteFailed = createError(
  'GH_STORE_WRITE_FAILED',
  'the registry could not be written (%s): nothing was changed; check free disk space and permissions of the data directory',
  503,
)
export const StoreReadFailed = createError(
  'GH_STORE_READ_FAILED',
  'the registry could not be read (%s): the disk or the file system holding the data directory failed a read; check it (dmesg, smartctl) and retry',
  503,
)
export const StoreDiskFull = createError(
  'GH_STORE_DISK_FULL',
  'the disk holding the data directory is full (%s): nothing was changed; free space there and retry (no restart needed)',
  507,
)
/** (what holds it, for how long and the engine's code; what to look for): store-failure.ts for SQLite, postgres/pg-failure.ts */
export const StoreLocked = createError('GH_STORE_LOCKED', 'the registry is locked by another %s: nothing was changed; %s and retry', 503)
export const StoreCorrupt = createError(
  'GH_STORE_CORRUPT',
  'the registry %s is not a readable SQLite database (%s): Gatehouse left it untouched; restore it from a backup (docs/deployment.md) or move it away to start afresh',
  500,
)
export const StoreSchemaTooNew = createError(
  'GH_STORE_SCHEMA_TOO_NEW',
  'the registry %s has schema version %s, newer than this Gatehouse knows (%s): upgrade Gatehouse',
  500,
)
export const StoreUnreachable = createError(
  'GH_STORE_UNREACHABLE',
  'the PostgreSQL registry cannot be reached (%s): the call was not completed (a transaction cut off at its commit may or may not have committed); check that the database server is up and the --database URL, then retry',
  503,
)
export const StoreTimeout = createError(
  'GH_STORE_TIMEOUT',
  'a statement of the PostgreSQL registry ran past its time and was cancelled (%s): nothing was changed; look for a long-running or blocked session in pg_stat_activity, or raise databaseStatementTimeoutMs if the query is legitimately slow, then retry',
  503,
)
export const StoreAuthFailed = createError(
  'GH_STORE_AUTH_FAILED',
  'PostgreSQL at %s refused the login (%s): check the user and password of the database URL (GATEHOUSE_DATABASE_URL, or ~/.pgpass for a URL without one) and the pg_hba.conf line that matches this host, user and database',
  503,
)
export const StoreDatabaseMissing = createError(
  'GH_STORE_DATABASE_MISSING',
  'PostgreSQL at %s has no such database (%s): create it (createdb -O <user> <name>) or correct the database name at the end of the URL',
  503,
)
export const StoreConnectionRefused = createError(
  'GH_STORE_CONNECTION_REFUSED',
  'nothing accepts connections at %s (%s): start PostgreSQL there, check that it listens on that address and port (listen_addresses and port in postgresql.conf), or correct the host and port of the database URL',
  503,
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
export const SettingsKeyInvalid = createError(
  'GH_SETTINGS_KEY_INVALID',
  'the settings encryption key is unusable (%s): restore data/settings.key or GATEHOUSE_SETTINGS_KEY from a backup',
  500,
)
export const SettingsInvalid = createError('GH_SETTINGS_INVALID', 'invalid settings at %s: %s', 400)
export const JsonIntegerUnsafe = createError(
  'GH_JSON_INTEGER_UNSAFE',
  'the integer %s at %s is beyond ±9007199254740991 (2^53 - 1): JSON numbers are doubles, so it would be read as %s and devices would get another number than you wrote; send it as a string or keep integers within that range (nothing was changed)',
  400,
)
export const SettingsTooLarge = createError(
  'GH_SETTINGS_TOO_LARGE',
  'settings document too large (%s): keep each layer under %s bytes and %s levels deep',
  413,
)
export const SettingsSchemaViolation = createError('GH_SETTINGS_SCHEMA', "the settings break group '%s' schema: %s", 422)
export const SettingsVersionMismatch = createError(
  'GH_SETTINGS_VERSION_MISMATCH',
  'settings changed meanwhile: If-Match %s, current %s; read them again and retry',
  412,
)
export const SettingsScopeInvalid = createError('GH_SETTINGS_SCOPE_INVALID', 'invalid settings scope: %s', 400)
export const SettingsSchemaTooLarge = createError(
  'GH_SETTINGS_SCHEMA_TOO_LARGE',
  'the JSON Schema is %s bytes, over the limit of %s bytes: split it or drop descriptions and examples',
  413,
)
export const SettingsPatternUnsupported = createError(
  'GH_SETTINGS_PATTERN_UNSUPPORTED',
  "the schema's pattern '%s' is not supported (%s): Gatehouse runs schema patterns on RE2 (linear time), which has no backreferences or lookaround; rewrite it without them",
  400,
)
export const SettingsKeyMissing = createError(
  'GH_SETTINGS_KEY_MISSING',
  '%s is missing while the registry holds %s sealed secret(s) (secret settings, route secrets): restore it (or GATEHOUSE_SETTINGS_KEY) from a backup; Gatehouse does not make a new key while secrets sealed with the old one exist',
  500,
)

// API keys (provisioning/api-keys/) and the HTTP API (provisioning/api/)
export const ApiKeyMissing = createError(
  'GH_API_KEY_MISSING',
  'this endpoint needs an API key: send the header "Authorization: Bearer <key>" (create one with gatehouse apikey create)',
  401,
)
export const ApiKeyInvalid = createError(
  'GH_API_KEY_INVALID',
  'the API key is not valid (malformed, unknown, revoked or expired): check it, or ask an operator for a new one',
  401,
)
export const ApiKeyScopeMissing = createError('GH_API_KEY_SCOPE', "this API key lacks the scope '%s' that this endpoint needs", 403)
export const ApiKeyScopeInvalid = createError('GH_API_KEY_SCOPE_INVALID', 'invalid API key scopes: %s (use one or more of %s)', 400)
export const ApiKeyNameInvalid = createError(
  'GH_API_KEY_NAME_INVALID',
  "invalid API key name '%s': use 1-64 characters of A-Z a-z 0-9 . _ -",
  400,
)
export const ApiKeyExpiryInvalid = createError('GH_API_KEY_EXPIRY_INVALID', 'invalid API key expiry: %s', 400)
export const ApiKeyExists = createError(
  'GH_API_KEY_EXISTS',
  "an API key named '%s' already exists: pick another name, or revoke it first",
  409,
)
export const ApiKeyNotFound = createError('GH_API_KEY_NOT_FOUND', "no API key named '%s': 'gatehouse apikey list' shows them", 404)
export const ApiKeyRevoked = createError('GH_API_KEY_REVOKED', "the API key '%s' is already revoked", 409)
export const ApiKeyScopeEscalation = createError(
  'GH_API_KEY_SCOPE_ESCALATION',
  'this API key cannot manage a key with scopes it does not hold itself (%s): use a key that holds them, or the operator CLI',
  403,
)
export const ApiKeyOverlapInvalid = createError(
  'GH_API_KEY_OVERLAP_INVALID',
  'invalid rotation overlap %s: use a whole number of seconds from 0 to %s (30 days), or a duration such as 30m, 24h or 7d',
  400,
)
export const CrlNotFound = createError(
  'GH_CRL_NOT_FOUND',
  "no CRL for the issuer key id '%s': the CRL Distribution Points extension of a Gatehouse certificate names the right URL",
  404,
)
export const ApiTokenInQuery = createError(
  'GH_API_TOKEN_IN_QUERY',
  'an API key was sent in the URL query: URLs end up in logs and proxies, so the request was refused; send it as "Authorization: Bearer <key>" and revoke the exposed key',
  400,
)
export const ApiRateLimited = createError('GH_API_RATE_LIMITED', 'too many requests for this API key: retry after %s s', 429)
export const ApiBodyInvalid = createError('GH_API_BODY_INVALID', 'the request body is not valid JSON%s', 400)
export const ApiValidation = createError('GH_API_VALIDATION', 'the request is invalid: %s', 400)
export const ApiBodyTooLarge = createError('GH_API_BODY_TOO_LARGE', 'the request body is larger than %s bytes', 413)
export const ApiMediaType = createError(
  'GH_API_MEDIA_TYPE',
  "unsupported content type '%s': send application/json (or application/merge-patch+json to PATCH settings)",
  415,
)
export const ApiNotFound = createError('GH_API_NOT_FOUND', 'no such endpoint: %s %s (GET /openapi.json lists them)', 404)
export const ApiRequestInvalid = createError('GH_API_REQUEST_INVALID', 'the request cannot be processed: %s', 400)
export const ApiInternal = createError('GH_API_INTERNAL', 'internal error, see the Gatehouse log (requestId %s)', 500)
export const ApiInsecure = createError(
  'GH_API_INSECURE',
  "refusing to serve the HTTP API without TLS on the non-loopback address '%s': pass the server certificate (tls), bind 127.0.0.1, or set allowInsecureHttp behind a TLS-terminating proxy",
  500,
)

// AI usage and insights (provisioning/ai-usage/)
export const AiUsageQueryInvalid = createError('GH_AI_USAGE_QUERY_INVALID', 'invalid AI usage query: %s', 400)

// Claims (provisioning/claims/) and enrollment over MQTT (provisioning/enrollment/): docs/device-lifecycle.md
export const ClaimRevoked = createError('GH_CLAIM_REVOKED', "claim '%s' is revoked: it provisions no more devices", 403)
export const ClaimExpired = createError('GH_CLAIM_EXPIRED', "claim '%s' expired at %s: ask the operator for a new claim", 403)
export const ClaimUsedUp = createError(
  'GH_CLAIM_USED_UP',
  "claim '%s' has provisioned its %s devices: ask the operator for a new claim",
  403,
)
export const ClaimRequestInvalid = createError(
  'GH_CLAIM_REQUEST_INVALID',
  'the claim request is invalid (%s): send JSON {"deviceId", "csr", "token"?, "requestId"?}',
  400,
)
export const ClaimIdNotAllowed = createError('GH_CLAIM_ID_NOT_ALLOWED', "claim '%s' may not provision the device id '%s' (%s)", 403)
export const ClaimTokenInvalid = createError(
  'GH_CLAIM_TOKEN_INVALID',
  "claim '%s' needs an unused one-time token, and this request's is %s",
  403,
)
export const ClaimExists = createError(
  'GH_CLAIM_EXISTS',
  "claim '%s' already exists (its id, certificate serial or fingerprint is taken): nothing was stored; create the claim again, which picks a new id",
  409,
)
export const ClaimNotFound = createError('GH_CLAIM_NOT_FOUND', "no claim '%s': 'gatehouse claim list' shows them", 404)
export const ClaimOptionsInvalid = createError('GH_CLAIM_OPTIONS_INVALID', 'invalid claim options: %s', 400)
export const ClaimRateLimited = createError('GH_CLAIM_RATE_LIMITED', "claim '%s' is over its request rate: ask again in %s s", 429)
export const CsrKeyInUse = createError(
  'GH_CSR_KEY_IN_USE',
  "the CSR's public key is already bound to another device: generate a new key pair for each device",
  409,
)
export const RenewalRequestInvalid = createError(
  'GH_RENEWAL_REQUEST_INVALID',
  'the renewal request is invalid (%s): send JSON {"csr", "requestId"?}',
  400,
)
export const RenewalTooEarly = createError('GH_RENEWAL_TOO_EARLY', 'the renewal window of certificate %s opens at %s: ask again then', 409)
export const RenewalNotCurrent = createError(
  'GH_RENEWAL_NOT_CURRENT',
  'certificate %s is not the current certificate of device %s (it was renewed already): reconnect with the new one',
  409,
)
export const RenewalKeyReused = createError(
  'GH_RENEWAL_KEY_REUSED',
  "the CSR's key is the key of certificate %s: make a new key for the renewal",
  400,
)

// The dashboard (provisioning/dashboard/)
export const DashboardSessionMissing = createError(
  'GH_DASHBOARD_SESSION',
  'no dashboard session, or it expired: sign in at /dashboard/sign-in with an API key that has the dashboard scope',
  401,
)
export const DashboardCsrf = createError(
  'GH_DASHBOARD_CSRF',
  "the request lacks this session's CSRF token (header x-csrf-token): reload the dashboard page",
  403,
)
export const DashboardOrigin = createError(
  'GH_DASHBOARD_ORIGIN',
  "the request comes from another origin ('%s'): the dashboard refuses cross-site requests",
  403,
)
export const DashboardSignInLimited = createError(
  'GH_DASHBOARD_SIGN_IN_LIMITED',
  'too many dashboard sign-in attempts (from this address, or from all): retry after %s s with the right API key',
  429,
)
export const DashboardStreamsFull = createError(
  'GH_DASHBOARD_STREAMS_FULL',
  'too many live dashboard streams are open (%s): close another dashboard tab and reload',
  503,
)

// Fleet checks (provisioning/checks/)
export const ChecksFailed = createError(
  'GH_CHECKS_FAILED',
  '%d fleet check finding(s) at or above %s: fix them (each finding says how), or choose another --fail-on',
  422,
)

// Health (provisioning/health/, GET /healthz and /readyz, `gatehouse status`)
export const HealthCheckTimeout = createError('GH_HEALTH_TIMEOUT', 'the %s check gave no answer within %s ms', 503)
export const HealthCheckFailed = createError('GH_HEALTH_CHECK_FAILED', 'the %s check failed unexpectedly: see the log', 503)
export const EventLoopDelayed = createError(
  'GH_HEALTH_EVENT_LOOP_DELAYED',
  'the event loop was blocked for %s ms (bound %s ms): look for CPU starvation or a long synchronous task in the log',
  503,
)
export const ChangeFeedStalled = createError('GH_HEALTH_FEED_STALLED', 'the change feed %s: see the log for failed polls', 503)
export const StatusNotRunning = createError(
  'GH_STATUS_NOT_RUNNING',
  'no Gatehouse answers on %s (%s): start it with `gatehouse start`, or pass the --data-dir / GATEHOUSE_HTTP_PORT it runs with',
  503,
)
export const CliUsage = createError('GH_CLI_USAGE', '%s (run with --help for usage)', 400)
export const CliInternal = createError(
  'GH_CLI_INTERNAL',
  'internal error: %s (set GATEHOUSE_LOG_LEVEL=debug for details, and report it if it persists)',
  500,
)
export const StatusUnreachable = createError('GH_STATUS_UNREACHABLE', 'Gatehouse on %s did not answer its health routes: %s', 503)
export const StatusNotReady = createError('GH_STATUS_NOT_READY', 'Gatehouse on %s is running but not ready: failed %s', 503)
export const TierUnknown = createError(
  'GH_TIER_UNKNOWN',
  "no tier '%s': the configured tiers are %s ('gatehouse tier list'); a tier is added in the configuration (ai.tiers)",
  404,
)
export const LimitsInvalid = createError(
  'GH_LIMITS_INVALID',
  "invalid limits: %s; nothing was changed ('gatehouse tier set --help' shows the shape)",
  400,
)
export const LabelsInvalid = createError(
  'GH_LABELS_INVALID',
  'invalid labels: %s (keys: 1-63 of A-Z a-z 0-9 . _ / - starting with a letter or digit; values: 1-128 of A-Z a-z 0-9 . _ : / @ + -; at most 32 per device); nothing was changed',
  400,
)
export const DeviceFieldInvalid = createError(
  'GH_DEVICE_FIELD_INVALID',
  "invalid %s '%s': use 1-64 of A-Z a-z 0-9 . _ -; nothing was changed",
  400,
)
export const BulkInvalid = createError('GH_BULK_INVALID', 'invalid bulk action: %s; nothing was changed', 400)
export const BulkOverMax = createError(
  'GH_BULK_OVER_MAX',
  'the selector matches more than the %s devices you allowed (max) that this action would change: narrow the selector or raise max (a dry run lists them); nothing was changed',
  409,
)
export const RouteInvalid = createError(
  'GH_ROUTE_INVALID',
  "invalid route: %s; nothing was stored ('gatehouse route create --help' shows the options)",
  400,
)
export const RouteTargetRefused = createError(
  'GH_ROUTE_TARGET_REFUSED',
  "the route URL %s: an app could reach the broker's own network this way; set routes.allowPrivateTargets in the configuration if that is intended. Nothing was stored",
  400,
)
export const RouteNotFound = createError('GH_ROUTE_NOT_FOUND', "no route '%s': 'gatehouse route list' shows the routes", 404)
export const RouteLimit = createError(
  'GH_ROUTE_LIMIT',
  'the registry already holds %s routes (routes.maxRoutes): delete one, or raise the limit in the configuration',
  409,
)
export const RouteTestFailed = createError('GH_ROUTE_TEST_FAILED', "the route's endpoint %s did not take the sample batch: %s", 502)
export const AppExists = createError(
  'GH_APP_EXISTS',
  "app '%s' already exists: pick another name, or use 'gatehouse app renew %s' for a new certificate",
  409,
)
export const AppNotFound = createError('GH_APP_NOT_FOUND', "no app '%s': 'gatehouse app list' shows the apps", 404)
export const AppRevoked = createError('GH_APP_REVOKED', "app '%s' is revoked, which is permanent: create a new app with another name", 409)
export const AppOptionsInvalid = createError('GH_APP_OPTIONS_INVALID', 'invalid app options: %s', 400)
export const AppLimit = createError(
  'GH_APP_LIMIT',
  'the registry already holds %s active apps (apps.maxApps): revoke one, or raise the limit in the configuration',
  409,
)
export const AppCertificateLimit = createError(
  'GH_APP_CERTIFICATE_LIMIT',
  "app '%s' already has %s active certificates: revoke an old one ('gatehouse app revoke %s --serial <serial>') before renewing",
  409,
)
export const AppCertificateNotFound = createError(
  'GH_APP_CERTIFICATE_NOT_FOUND',
  "app '%s' has no active certificate with serial '%s': 'gatehouse app show %s' lists its certificates",
  404,
)
export const MigrateTargetInvalid = createError('GH_MIGRATE_TARGET_INVALID', 'invalid migrate target: %s', 400)
export const MigrateTargetNotEmpty = createError(
  'GH_MIGRATE_TARGET_NOT_EMPTY',
  'the PostgreSQL database %s already holds registry data (%s rows in %s): migrate copies into an empty database only, and changed nothing; create a new database (createdb) and migrate into it, or drop this one first if what it holds is not needed',
  409,
)
export const MigrateSourceInvalid = createError(
  'GH_MIGRATE_SOURCE_INVALID',
  'the SQLite registry %s cannot be migrated: %s; nothing was copied',
  409,
)
