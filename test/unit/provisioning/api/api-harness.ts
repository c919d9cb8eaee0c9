import pino from 'pino'
import { onTestFinished } from 'vitest'
import { cryptoRandom } from '../../../../certs/index.ts'
import { limitsPolicy, loadConfig } from '../../../../config.ts'
import { buildApi, type ApiOptions } from '../../../../provisioning/api/build-api.ts'
import { createLimitsService } from '../../../../provisioning/limits/limits-service.ts'
import { createRouteService } from '../../../../provisioning/routes/route-service.ts'
import { createAppService } from '../../../../provisioning/apps/app-service.ts'
import type { Presence } from '../../../../provisioning/api/devices-routes.ts'
import type { Health } from '../../../../provisioning/health/health.ts'
import { createApiKeyService, type ApiKeyService } from '../../../../provisioning/api-keys/api-key-service.ts'
import { createAiUsageService } from '../../../../provisioning/ai-usage/ai-usage-service.ts'
import { createDeviceAuthority } from '../../../../provisioning/authority/device-authority.ts'
import { runChecks } from '../../../../provisioning/checks/run-checks.ts'
import { createSettingsCipher } from '../../../../provisioning/settings/secrets.ts'
import { createSettingsService } from '../../../../provisioning/settings/settings-service.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { seededRandom } from '../../../helpers/random.ts'
import { makeTestCa, makeTestCsr } from '../../../helpers/test-ca.ts'

export const T0 = '2026-01-01T00:00:00Z'

/** A pino logger at trace level whose output the test can read (to prove what never gets logged). */
export function capturedLog() {
  const lines: string[] = []
  const log = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) })
  return { log, text: () => lines.join('') }
}

/**
 * The API over a real control plane: SQLite in memory, the real authority, settings and API-key
 * services, a fixed clock, and a presence fake the test can set.
 */
export async function apiHarness(options: ApiOptions = {}, fakes: { presence?: Presence; health?: Health; dashboard?: boolean } = {}) {
  const clock = fixedClock(T0)
  const store = new SqliteRegistryStore(':memory:')
  const ca = await makeTestCa()
  const { log, text: logText } = capturedLog()
  const authority = createDeviceAuthority({ store, ca, clock, random: cryptoRandom, log }, { validDays: 30 })
  const cipher = createSettingsCipher(new Uint8Array(32).fill(7), cryptoRandom)
  const settings = createSettingsService({ store, settings: store.settings, cipher, clock, log })
  const apiKeys: ApiKeyService = createApiKeyService({
    store,
    apiKeys: store.apiKeys,
    dashboardSessions: store.dashboardSessions,
    clock,
    random: cryptoRandom,
    log,
  })
  const connected = new Map<string, Date>()
  const presence: Presence = fakes.presence ?? {
    isConnected: (id: string) => connected.has(id),
    lastSeen: async (id: string) => connected.get(id) ?? null,
  }
  const aiUsage = createAiUsageService({ store: store.aiUsage, clock })
  // the broker's telemetry ring, newest first per device (the ring itself: test/unit/broker/telemetry-ring.test.ts)
  const telemetryOf = new Map<string, unknown[]>()
  const telemetry = { recent: (id: string, limit: number) => (telemetryOf.get(id) ?? []).slice(0, limit) }
  // the check engine over an empty fleet (no data directory here); test/integration/api/checks-route.test.ts runs it on a real one
  let checkRuns = 0
  const checks = async () => {
    checkRuns++
    return runChecks(emptyFleet(clock.now()))
  }
  // the route's part is serving what the collector renders; the collector itself runs in test/integration/provisioning/metrics.test.ts
  const metrics = {
    render: async () => '# TYPE gatehouse_connections gauge\ngatehouse_connections 0\n',
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
  }
  // the limits policy of the default configuration (tiers standard and premium, the default limits)
  const limits = createLimitsService({ store, limits: store.limits, clock, log }, limitsPolicy(loadConfig({ dataDir: '/nonexistent' }, {})))
  // telemetry routes with the default policy; `test` answers like an endpoint that took the batch
  // seeded, so the route made here is always rt_ROUTE_ID's (ROUTES below reads, tests and deletes it)
  const routes = createRouteService(
    { store, routes: store.routes, cipher, clock, random: seededRandom(7), log },
    { maxRoutes: 16, allowPrivateTargets: false },
  )
  await routes.create({ url: 'https://ingest.example.com/fleet' }, 'operator:test')
  const tested: { url: string; messages: unknown[] }[] = []
  const telemetryRoutes = {
    routes,
    tester: async (route: { url: string }, messages: unknown[]) => {
      tested.push({ url: route.url, messages })
      return { status: 200, body: 'ok' }
    },
  }
  // one app, 'dash' (group pumps, telemetry), for /v1/apps
  const apps = createAppService({ store, apps: store.apps, authority, clock, random: cryptoRandom, log }, { maxApps: 10, validDays: 30 })
  await (await apps.prepareCreate({ name: 'dash', groups: ['pumps'], classes: ['telemetry'] }, 'operator:test')).commit()
  const app = buildApi(
    {
      authority,
      settings,
      apiKeys,
      aiUsage,
      presence,
      checks,
      clock,
      log,
      metrics,
      limits,
      telemetry,
      telemetryRoutes,
      apps,
      ...(fakes.health && { health: fakes.health }),
      // the dashboard with a quiet broker, sessions and audit in this registry
      ...(fakes.dashboard && {
        dashboard: {
          signals: {
            connectedDeviceIds: () => [],
            onChange: () => () => {},
            busiestDevices: () => ({ since: T0, devices: [], untracked: 0 }),
            aiThrottledByTier: () => ({}),
            connectionHistory: () => [],
          },
          sessions: store.dashboardSessions,
          audit: async (entry: Parameters<typeof store.appendAudit>[0]) => void (await store.appendAudit(entry)),
        },
      }),
    },
    options,
  )
  onTestFinished(async () => {
    await app.close()
    store.close()
  })
  let n = 0
  /** a fresh key with these scopes; returns the Authorization header value */
  const keyWith = async (...scopes: string[]) =>
    `Bearer ${(await apiKeys.create({ name: `k${++n}`, scopes: scopes.length ? scopes : ['devices:read'] }, 'operator:test')).token}`
  /** app.inject with an Authorization header and, for a body, JSON */
  const call = (auth: string | undefined, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { ...(auth && { authorization: auth }), ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      ...(body !== undefined && { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
  return {
    app,
    clock,
    store,
    authority,
    settings,
    apiKeys,
    aiUsage,
    limits,
    connected,
    telemetryOf,
    routes,
    tested,
    logText,
    keyWith,
    call,
    checkRuns: () => checkRuns,
  }
}

const emptyFleet = (now: Date) => ({
  now,
  devices: [],
  caCertificates: [],
  keyFiles: [],
  privatePaths: [],
  crls: [],
  limitHits: [],
  claims: [],
  apiKeys: [],
  settingsLayers: [],
})

/** Every authenticated route, with the one scope it needs and a request that succeeds (200, or `status`) when allowed. */
/** the id of the route every harness starts with (seededRandom(7)'s first six bytes) */
export const ROUTE_ID = `rt_${Buffer.from(seededRandom(7).bytes(6)).toString('hex')}`

/** Every authenticated route, with the one scope it needs and a request that succeeds when allowed. */
// CSRs for the lifecycle routes of the scope matrix: a new device 'new-1' and a renewal of 'pump-1'
const NEW_CSR = (await makeTestCsr({ commonName: 'new-1' })).pem
const RENEW_CSR = (await makeTestCsr({ commonName: 'pump-1' })).pem
const SELECT_PUMPS = { selector: { group: 'pumps' }, max: 10 }

/** Every authenticated route, called with the scope it needs (status: its success code, default 200). */
export const ROUTES: { method: string; url: string; path: string; scope: string; body?: unknown; status?: number }[] = [
  { method: 'GET', url: '/v1/devices', path: '/v1/devices', scope: 'devices:read' },
  { method: 'GET', url: '/v1/devices/pump-1', path: '/v1/devices/{id}', scope: 'devices:read' },
  {
    method: 'POST',
    url: '/v1/devices/pump-1/revoke',
    path: '/v1/devices/{id}/revoke',
    scope: 'devices:revoke',
    body: { reason: 'keyCompromise' },
  },
  { method: 'GET', url: '/v1/devices/pump-1/settings', path: '/v1/devices/{id}/settings', scope: 'settings:read' },
  { method: 'PATCH', url: '/v1/devices/pump-1/settings', path: '/v1/devices/{id}/settings', scope: 'settings:write', body: { rate: 5 } },
  { method: 'GET', url: '/v1/groups/pumps/settings', path: '/v1/groups/{group}/settings', scope: 'settings:read' },
  { method: 'PATCH', url: '/v1/groups/pumps/settings', path: '/v1/groups/{group}/settings', scope: 'settings:write', body: { rate: 5 } },
  { method: 'GET', url: '/v1/settings/defaults', path: '/v1/settings/defaults', scope: 'settings:read' },
  { method: 'PATCH', url: '/v1/settings/defaults', path: '/v1/settings/defaults', scope: 'settings:write', body: { rate: 5 } },
  { method: 'GET', url: '/v1/groups/pumps/settings/schema', path: '/v1/groups/{group}/settings/schema', scope: 'settings:read' },
  {
    method: 'PUT',
    url: '/v1/groups/pumps/settings/schema',
    path: '/v1/groups/{group}/settings/schema',
    scope: 'settings:write',
    body: { type: 'object' },
  },
  { method: 'GET', url: '/v1/devices/pump-1/insights', path: '/v1/devices/{id}/insights', scope: 'insights:read' },
  { method: 'GET', url: '/v1/devices/pump-1/usage', path: '/v1/devices/{id}/usage', scope: 'insights:read' },
  { method: 'GET', url: '/v1/checks', path: '/v1/checks', scope: 'checks:read' },
  { method: 'GET', url: '/metrics', path: '/metrics', scope: 'metrics:read' },
  { method: 'GET', url: '/v1/tiers', path: '/v1/tiers', scope: 'devices:read' },
  { method: 'GET', url: '/v1/routes', path: '/v1/routes', scope: 'routes:read' },
  {
    method: 'POST',
    url: '/v1/routes',
    path: '/v1/routes',
    scope: 'routes:write',
    body: { url: 'https://ingest.example.com/gatehouse', group: 'pumps' },
    status: 201,
  },
  { method: 'GET', url: `/v1/routes/${ROUTE_ID}`, path: '/v1/routes/{id}', scope: 'routes:read' },
  { method: 'POST', url: `/v1/routes/${ROUTE_ID}/test`, path: '/v1/routes/{id}/test', scope: 'routes:write' },
  { method: 'DELETE', url: `/v1/routes/${ROUTE_ID}`, path: '/v1/routes/{id}', scope: 'routes:write' },
  {
    method: 'PUT',
    url: '/v1/tiers/premium',
    path: '/v1/tiers/{name}',
    scope: 'tiers:write',
    body: { broker: { publishRate: { ratePerSecond: 50 } } },
  },
  { method: 'GET', url: '/v1/devices/pump-1/limits', path: '/v1/devices/{id}/limits', scope: 'devices:read' },
  {
    method: 'PUT',
    url: '/v1/devices/pump-1/limits',
    path: '/v1/devices/{id}/limits',
    scope: 'tiers:write',
    body: { ai: { dailyRequests: 10 } },
  },
  { method: 'DELETE', url: '/v1/devices/pump-1/limits', path: '/v1/devices/{id}/limits', scope: 'tiers:write' },
  { method: 'GET', url: '/v1/apikeys', path: '/v1/apikeys', scope: 'apikeys:admin' },
  {
    method: 'POST',
    url: '/v1/apikeys',
    path: '/v1/apikeys',
    scope: 'apikeys:admin',
    body: { name: 'made-by-key', scopes: ['apikeys:admin'] },
    status: 201,
  },
  // k1: the calling key itself (the first keyWith() of a harness)
  { method: 'POST', url: '/v1/apikeys/k1/rotate', path: '/v1/apikeys/{name}/rotate', scope: 'apikeys:admin', body: { overlapSeconds: 60 } },
  { method: 'POST', url: '/v1/apikeys/k1/revoke', path: '/v1/apikeys/{name}/revoke', scope: 'apikeys:admin', body: {} },
  { method: 'POST', url: '/v1/devices', path: '/v1/devices', scope: 'devices:write', body: { id: 'new-1', csr: NEW_CSR }, status: 201 },
  { method: 'POST', url: '/v1/devices/pump-1/renew', path: '/v1/devices/{id}/renew', scope: 'devices:write', body: { csr: RENEW_CSR } },
  { method: 'POST', url: '/v1/devices/pump-1/disable', path: '/v1/devices/{id}/disable', scope: 'devices:write' },
  { method: 'POST', url: '/v1/devices/pump-2/enable', path: '/v1/devices/{id}/enable', scope: 'devices:write' },
  {
    method: 'PATCH',
    url: '/v1/devices/pump-1',
    path: '/v1/devices/{id}',
    scope: 'devices:write',
    body: { tier: 'premium', labels: { site: 'n' } },
  },
  { method: 'POST', url: '/v1/bulk/devices/disable', path: '/v1/bulk/devices/disable', scope: 'devices:write', body: SELECT_PUMPS },
  { method: 'POST', url: '/v1/bulk/devices/enable', path: '/v1/bulk/devices/enable', scope: 'devices:write', body: SELECT_PUMPS },
  { method: 'POST', url: '/v1/bulk/devices/revoke', path: '/v1/bulk/devices/revoke', scope: 'devices:revoke', body: SELECT_PUMPS },
  {
    method: 'POST',
    url: '/v1/bulk/devices/move',
    path: '/v1/bulk/devices/move',
    scope: 'devices:write',
    body: { ...SELECT_PUMPS, to: { tier: 'premium' } },
  },
  { method: 'GET', url: '/v1/devices/pump-1/telemetry', path: '/v1/devices/{id}/telemetry', scope: 'telemetry:read' },
  { method: 'GET', url: '/v1/apps', path: '/v1/apps', scope: 'apps:admin' },
  { method: 'GET', url: '/v1/apps/dash', path: '/v1/apps/{name}', scope: 'apps:admin' },
  { method: 'POST', url: '/v1/apps/dash/revoke', path: '/v1/apps/{name}/revoke', scope: 'apps:admin' },
]
