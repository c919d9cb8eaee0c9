// The control plane's public face. Other folders import provisioning/ only through this file.
export * from './errors.ts'
export * from './events.ts'
export { createDeviceAuthority } from './authority/device-authority.ts'
export type {
  Actor,
  AuthorityDeps,
  AuthorityOptions,
  DeviceAuthority,
  DeviceDetails,
  IssuedCertificate,
  IssuedDevice,
  NewDevice,
  PreparedDevice,
  RenewalRequest,
} from './authority/device-authority.ts'
export { batchIds, MAX_BATCH, type BatchRequest, type PreparedBatch } from './authority/batch.ts'
export { cachedDeviceContexts, type DeviceContext, type DeviceContexts } from './device-contexts.ts'
export { createRegistryDirectory, type ClaimLookup, type DeviceLookup, type RefusalReason, type RegistryDirectory } from './registry-directory.ts'
export { SqliteRegistryStore } from './store/sqlite-registry-store.ts'
export { InMemoryRegistryStore } from './store/in-memory-registry-store.ts'
export type * from './store/registry-store.ts'
export {
  describeCa,
  initDataDir,
  keepCaCurrent,
  loadCa,
  loadServerTls,
  rotateCa,
  type CaCertificateInfo,
  type CaKeeper,
  type CaOverview,
  type CaRotationSummary,
  type CrlSnapshot,
  type InitOptions,
  type InitResult,
  type ServerTlsMaterial,
} from './ca/index.ts'
export { dataDirLayout, type DataDirLayout } from './data-dir/layout.ts'
export { writeFileAtomic } from './data-dir/atomic-file.ts'
export { writeDeviceBundle, type BundleFormat } from './bundles/write-bundle.ts'
export { initControlPlane, openControlPlane, type ControlPlane, type ControlPlaneDeps } from './control-plane.ts'
export {
  createSettingsService,
  GROUP_PATTERN,
  scopeOf,
  type DeliverableSettings,
  type DeviceSettingsView,
  type LayerView,
  type SettingsService,
  type SettingsTarget,
} from './settings/settings-service.ts'
export { createSettingsCipher, isSecretKey, REDACTED, SECRET_KEY_PATTERN, type SettingsCipher } from './settings/secrets.ts'
export { applyMergePatch } from './settings/json-document.ts'
export { loadSettingsKey } from './data-dir/settings-key.ts'
export {
  createApiKeyService,
  apiKeyActor,
  API_KEY_NAME_PATTERN,
  type ApiKey,
  type ApiKeyService,
  type ApiKeyServiceDeps,
  type NewApiKey,
} from './api-keys/api-key-service.ts'
export { API_SCOPES, isApiScope, type ApiScope } from './api-keys/scopes.ts'
export { parseExpiry } from './api-keys/expiry.ts'
export type { ApiKeyRecord, ApiKeyStore } from './store/api-key-store.ts'
// The HTTP API's values (buildApi, serveApi) live in ./api/index.ts: importing fastify and its OpenAPI
// plugin here would add ~0.4 s to every CLI command. Import them from there where the API is served.
export type { ApiDeps, ApiOptions } from './api/build-api.ts'
export type { ServeApiOptions, ServedApi } from './api/serve-api.ts'
export type { Presence } from './api/devices-routes.ts'
export type { RateLimit } from './api/rate-limiter.ts'
export {
  createAiUsageService,
  MAX_INSIGHTS_LIMIT,
  MAX_USAGE_DAYS,
  type AiInsight,
  type AiUsageDay,
  type AiUsageReport,
  type AiUsageService,
  type AiUsageServiceDeps,
  type AiUsageServiceOptions,
} from './ai-usage/ai-usage-service.ts'
export { InMemoryAiUsageStore } from './ai-usage/in-memory-ai-usage-store.ts'
export type { AiUsageRecord, AiUsageStore, StoredInsight } from './store/ai-usage-store.ts'
export {
  createClaimService,
  claimActor,
  newClaimId,
  DEFAULT_CLAIM_EXPIRY_MS,
  DEFAULT_CLAIM_MAX_USES,
  type ClaimService,
  type ClaimServiceDeps,
  type ClaimView,
  type CreatedClaim,
  type NewClaim,
  type PreparedClaim,
} from './claims/claim-service.ts'
export { claimChecksBeforeRepeat, claimChecksForNewDevice, hashClaimToken, type ClaimCheck, type ClaimCheckInput } from './claims/claim-checks.ts'
export {
  createEnrollmentService,
  DEFAULT_CLAIM_REQUEST_RATE,
  type ClaimRequestContext,
  type EnrollmentAnswer,
  type EnrollmentOptions,
  type EnrollmentService,
  type EnrollmentServiceDeps,
  type RenewalRequestContext,
} from './enrollment/enrollment-service.ts'
export { MAX_ENROLLMENT_PAYLOAD_BYTES } from './enrollment/enrollment-requests.ts'
export type { ClaimRecord, ClaimStatus, ClaimStore, ClaimedDevice, TokenState } from './store/claim-store.ts'
export { InMemoryClaimStore } from './store/in-memory-claim-store.ts'
