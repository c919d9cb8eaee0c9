import type { Logger } from 'pino'
import { cryptoRandom, systemClock, type Clock, type KeyAlgorithm, type Random } from '../certs/index.ts'
import { createAppService, type AppPolicy, type AppService } from './apps/index.ts'
import { createApiKeyService, type ApiKeyService } from './api-keys/api-key-service.ts'
import { createAiUsageService, type AiUsageService } from './ai-usage/ai-usage-service.ts'
import { createDeviceAuthority, type AuthorityCa, type AuthorityOptions, type DeviceAuthority } from './authority/device-authority.ts'
import { initDataDir, loadCa, loadCaCertificates, recordInterruptedRotation, type InitResult, type Pkcs11Location } from './ca/index.ts'
import { dataDirLayout } from './data-dir/layout.ts'
import { loadSettingsKey } from './data-dir/settings-key.ts'
import { checkFleet, type CheckOptions, type CheckReport } from './checks/index.ts'
import { createClaimService, type ClaimService } from './claims/claim-service.ts'
import { createEnrollmentService, type EnrollmentOptions, type EnrollmentService } from './enrollment/enrollment-service.ts'
import { SettingsKeyMissing } from './errors.ts'
import { createLimitsService, NO_LIMITS_POLICY, type LimitsPolicy, type LimitsService } from './limits/index.ts'
import { createRouteService, isSealedSecret, type RoutePolicy, type RouteService } from './routes/index.ts'
import { assertOpens, createSettingsCipher, unusableCipher, type SettingsCipher } from './settings/secrets.ts'
import { createSettingsService, type SettingsLimits, type SettingsService } from './settings/settings-service.ts'
import { openRegistry, type Registry, type RegistryPoolOptions } from './store/open-registry.ts'

export interface ControlPlaneDeps {
  log: Logger
  clock?: Clock
  random?: Random
  /** the CA passphrase; callers take it from the environment or a file, never from a flag */
  passphrase?: string
  /** the user PIN of the PKCS#11 token holding the CA keys (GATEHOUSE_PKCS11_PIN / _FILE), never from a flag */
  pkcs11Pin?: string
  /** GATEHOUSE_SETTINGS_KEY (base64), else data/settings.key is used */
  settingsKey?: string
  /** the registry on PostgreSQL (config databaseUrl, GATEHOUSE_DATABASE_URL); else SQLite in the data directory */
  databaseUrl?: string
  /** the cluster's CA sync secret (caSyncSecretFile): seals and opens the CA keys a shared registry carries (ca/ca-material.ts) */
  caSyncSecret?: Uint8Array
  /** the PostgreSQL registry's pool size and statement timeout (config databasePoolSize, databaseStatementTimeoutMs) */
  databasePool?: RegistryPoolOptions
}

export interface ControlPlane {
  store: Registry
  authority: DeviceAuthority
  settings: SettingsService
  /** apps' API keys for the HTTP API */
  apiKeys: ApiKeyService
  /** the AI bridge's daily usage and last insights per device */
  aiUsage: AiUsageService
  /** claims for zero-touch provisioning (gatehouse claim create|list|revoke) */
  claims: ClaimService
  /** answers devices' claim and renewal requests over MQTT (the broker's EnrollmentService) */
  enrollment: EnrollmentService
  /** per-tier and per-device limits (gatehouse tier, gatehouse device limits, /v1/tiers) */
  limits: LimitsService
  /** telemetry routes (gatehouse route, /v1/routes) */
  routes: RouteService
  /** app identities for MQTT (gatehouse app) */
  apps: AppService
  /** the fleet audit checks over this data directory (GET /v1/checks) */
  checks(options?: Partial<CheckOptions>): Promise<CheckReport>
  /** Reads the CA from the data directory again (after `ca rotate`): the authority issues with it from now on. */
  reloadCa(): Promise<void>
  /**
   * Stores the insights' write-behind, then closes the registry; settles when both are done (PostgreSQL's
   * connections ended), never rejects: a failure is logged. Called again, it returns the same Promise.
   */
  close(): Promise<void>
}

/**
 * Opens the registry and the CA of a data directory. The CA is loaded first, so a wrong passphrase, a
 * missing or corrupt key or a loose file mode stops here and changes nothing. With `lazyCaKeys` (the CLI:
 * most commands sign nothing) only the CA's certificates are read here, and its keys when something first
 * signs, with the same errors then, before that operation changes anything (issue 14).
 */
export async function openControlPlane(
  dataDir: string,
  options: AuthorityOptions &
    EnrollmentOptions & { settings?: SettingsLimits; limits?: LimitsPolicy; routes?: RoutePolicy; apps?: AppPolicy; lazyCaKeys?: boolean },
  deps: ControlPlaneDeps,
): Promise<ControlPlane> {
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? cryptoRandom
  const ca = options.lazyCaKeys
    ? { ca: loadCaCertificates(dataDir, clock), loadCa: () => loadCa(dataDir, deps, clock) }
    : { ca: await loadCa(dataDir, deps, clock) }
  const store = await openRegistry(dataDirLayout(dataDir).database, deps.databaseUrl, deps.databasePool)
  try {
    return await assemble(dataDir, options, deps, { ca, store, clock, random })
  } catch (err) {
    // a later step failed (a rotation left half-done, the settings key, sealing route secrets): no pool stays open
    await Promise.resolve(store.close()).catch((closeErr: unknown) => deps.log.warn({ err: closeErr }, 'closing the registry failed'))
    throw err
  }
}

/** The services of the control plane over its opened CA and registry (openControlPlane closes the registry if this throws). */
async function assemble(
  dataDir: string,
  options: Parameters<typeof openControlPlane>[1],
  deps: ControlPlaneDeps,
  { ca, store, clock, random }: { ca: AuthorityCa; store: Registry; clock: Clock; random: Random },
): Promise<ControlPlane> {
  // a `ca rotate` killed past its commit gets its audit entry and event now (ca/rotation-journal.ts)
  await recordInterruptedRotation(store, dataDirLayout(dataDir), { clock, log: deps.log.child({ module: 'provisioning.ca' }) })
  const cipher = await openSettingsCipher(dataDir, store, deps, random)
  const authority = createDeviceAuthority(
    { store, ...ca, clock, random, claims: store.claims, apps: store.apps, log: deps.log.child({ module: 'provisioning.authority' }) },
    options,
  )
  const settings = createSettingsService(
    { store, settings: store.settings, cipher, clock, log: deps.log.child({ module: 'provisioning.settings' }) },
    options.settings,
  )
  const apiKeys = createApiKeyService({
    store,
    apiKeys: store.apiKeys,
    dashboardSessions: store.dashboardSessions,
    clock,
    random,
    log: deps.log.child({ module: 'provisioning.apikeys' }),
  })
  const aiUsage = createAiUsageService({ store: store.aiUsage, clock, log: deps.log.child({ module: 'provisioning.ai-usage' }) })
  const claims = createClaimService(
    { store, claims: store.claims, authority, clock, random, log: deps.log.child({ module: 'provisioning.claims' }) },
    options,
  )
  const enrollment = createEnrollmentService(
    { authority, claims: store.claims, store, clock, log: deps.log.child({ module: 'provisioning.enrollment' }) },
    {
      ...(options.renewalWindow !== undefined && { renewalWindow: options.renewalWindow }),
      ...(options.claimRequestRate !== undefined && { claimRequestRate: options.claimRequestRate }),
      ...(options.rateLimiters !== undefined && { rateLimiters: options.rateLimiters }),
      ...(options.auditIntervalMs !== undefined && { auditIntervalMs: options.auditIntervalMs }),
    },
  )
  const limits = createLimitsService(
    { store, limits: store.limits, clock, log: deps.log.child({ module: 'provisioning.limits' }) },
    options.limits ?? NO_LIMITS_POLICY,
  )
  const routes = createRouteService(
    { store, routes: store.routes, cipher, clock, random, log: deps.log.child({ module: 'provisioning.routes' }) },
    options.routes ?? { maxRoutes: 16, allowPrivateTargets: false },
  )
  // route secrets stored in clear (before they were sealed) are sealed now: the key is not available to a migration
  await routes.sealStoredSecrets()
  const apps = createAppService(
    { store, apps: store.apps, authority, clock, random, log: deps.log.child({ module: 'provisioning.apps' }) },
    options.apps ?? { maxApps: 1000, validDays: 365 },
  )
  const reloadCa = async (): Promise<void> => authority.reloadCa(await loadCa(dataDir, deps, clock))
  const stores = { registry: store, claims: store.claims, apiKeys: store.apiKeys, settings: store.settings }
  const checks = (checkOptions: Partial<CheckOptions> = {}) => checkFleet(dataDir, stores, checkOptions, { clock })
  let closing: Promise<void> | undefined
  return {
    store,
    authority,
    settings,
    apiKeys,
    aiUsage,
    claims,
    enrollment,
    limits,
    routes,
    apps,
    checks,
    reloadCa,
    close: () => {
      // the insights' write-behind: what a clean close must not lose. SQLite writes them at this call (no
      // transaction can be open at close), PostgreSQL before its pool ends; the store closes after it
      closing ??= aiUsage
        .closeInsights()
        .catch((err: unknown) => deps.log.error({ err }, 'storing insights failed at close; they are lost'))
        .then(() => store.close())
        .catch((err: unknown) => deps.log.warn({ err }, 'closing the registry failed'))
      return closing
    },
  }
}

/** Values sealed with the settings key: secret settings and route secrets (a lost key file is not replaced while any exist). */
const countSealed = async (store: Registry): Promise<number> =>
  (await store.settings.countSealed()) + (await store.routes.list()).filter((r) => isSealedSecret(r.secret)).length

/**
 * The settings cipher. Without its key while sealed secrets exist, the control plane still opens (to
 * revoke, list, create devices) but settings changes are refused and secrets read as [secret];
 * `start` refuses earlier, in initControlPlane.
 */
async function openSettingsCipher(dataDir: string, store: Registry, deps: ControlPlaneDeps, random: Random): Promise<SettingsCipher> {
  try {
    return createSettingsCipher(await loadSettingsKey(dataDir, deps.settingsKey, random, () => countSealed(store)), random)
  } catch (err) {
    if (!(err instanceof SettingsKeyMissing)) throw err
    deps.log.error({ code: err.code }, err.message)
    return unusableCipher(err)
  }
}

/**
 * init: data dir, CA, server certificate and settings key on first use; idempotent. A new CA or server
 * certificate is audited. A settings key missing while sealed secrets exist stops it (and so `start`).
 */
export async function initControlPlane(
  dataDir: string,
  options: { keyAlgorithm?: KeyAlgorithm; hostnames?: string[]; pkcs11?: Pkcs11Location },
  deps: ControlPlaneDeps,
  actor: string,
): Promise<InitResult> {
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? cryptoRandom
  const result = await initDataDir(
    dataDir,
    {
      ...(deps.passphrase !== undefined && { passphrase: deps.passphrase }),
      ...(deps.pkcs11Pin !== undefined && { pkcs11Pin: deps.pkcs11Pin }),
      ...options,
    },
    { clock, random },
  )
  // on an empty PostgreSQL database, opening it applies the migrations
  const store = await openRegistry(result.layout.database, deps.databaseUrl, deps.databasePool)
  try {
    const key = await loadSettingsKey(dataDir, deps.settingsKey, random, () => countSealed(store))
    // a key that is not the one the secrets were sealed with (another GATEHOUSE_SETTINGS_KEY) stops start too
    const sealed = await store.settings.aSealedLayer()
    if (sealed) assertOpens(sealed.document, createSettingsCipher(key, random))
    if (result.createdCa || result.serverCertIssued) {
      await store.appendAudit({
        at: clock.now(),
        actor,
        action: result.createdCa ? 'ca.created' : 'server-certificate.issued',
        subject: 'ca',
        details: {
          keyAlgorithm: options.keyAlgorithm ?? 'p256',
          hostnames: options.hostnames ?? [],
          encrypted: deps.passphrase !== undefined,
          ...(result.createdCa && options.pkcs11 && { pkcs11: { module: options.pkcs11.module, token: options.pkcs11.token } }),
        },
      })
    }
  } finally {
    await store.close()
  }
  return result
}
