import swagger from '@fastify/swagger'
import fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { cryptoRandom, type Clock, type Random, type Timers } from '../../certs/index.ts'
import type { ApiKeyService } from '../api-keys/api-key-service.ts'
import { API_SCOPES } from '../api-keys/scopes.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import type { SettingsService } from '../settings/settings-service.ts'
import { apiKeyAuth } from './api-key-auth.ts'
import { apiKeysRoutes } from './api-keys-routes.ts'
import { checksRoutes, type ChecksRoutesOptions } from './checks-routes.ts'
import { crlRoutes } from './crl-routes.ts'
import { devicesRoutes, type Presence } from './devices-routes.ts'
import { deviceLifecycleRoutes } from './device-lifecycle-routes.ts'
import { createHealth, type Health } from '../health/health.ts'
import { healthRoutes } from './health-routes.ts'
import { notFoundHandler, problemErrorHandler } from './problem.ts'
import { DEFAULT_RATE_LIMIT, memoryRateLimiters, type RateLimit, type RateLimiter, type RateLimiterFactory } from './rate-limiter.ts'
import { sharedSchemas } from './schemas.ts'
import { settingsRoutes } from './settings-routes.ts'
import { insightsRoutes } from './insights-routes.ts'
import type { AiUsageService } from '../ai-usage/ai-usage-service.ts'
import { registerDashboard, type DashboardOptions, type FleetSignals, type AiBudgetOf } from '../dashboard/index.ts'
import type { Metrics } from '../metrics/index.ts'
import { metricsRoutes } from './metrics-routes.ts'
import type { LimitsService } from '../limits/index.ts'
import { tierRoutes } from './tier-routes.ts'
import { telemetryRoutes, type TelemetrySource } from './telemetry-routes.ts'
import { routeRoutes, type RouteRoutesOptions } from './route-routes.ts'
import { appRoutes } from './app-routes.ts'
import type { AppService } from '../apps/index.ts'
import { buildAsyncApi } from '../device-protocol/index.ts'
import { addJsonBodyParser } from './json-body.ts'
import type { DashboardSessionStore } from '../store/dashboard-session-store.ts'
import type { AuditEntry } from '../store/registry-store.ts'

export interface ApiDeps {
  authority: DeviceAuthority
  settings: SettingsService
  apiKeys: ApiKeyService
  presence: Presence
  /** the AI bridge's insights and usage, read-only */
  aiUsage: Pick<AiUsageService, 'listInsights' | 'usageFor'>
  /** the fleet audit checks (GET /v1/checks) */
  checks: ChecksRoutesOptions['checks']
  clock: Clock
  log: Logger
  /** request ids and dashboard sessions; default crypto randomness */
  random?: Random
  /** the dashboard (/dashboard) is served when its live signals are given (gatehouse.ts does) */
  dashboard?: {
    signals: FleetSignals
    aiBudget?: AiBudgetOf
    timers?: Timers
    sessions?: DashboardSessionStore
    audit?: (entry: Omit<AuditEntry, 'id'>) => Promise<void>
  }
  /** GET /healthz and /readyz (gatehouse.ts names the checks); default: no checks, both answer ok */
  health?: Health
  /** serves GET /metrics to keys with metrics:read; absent when metrics have their own listener (metricsPort) */
  metrics?: Pick<Metrics, 'render' | 'contentType'>
  /** per-tier and per-device limits (/v1/tiers, /v1/devices/{id}/limits); the routes are served when given */
  limits?: LimitsService
  /** the broker's recent telemetry per device (GET /v1/devices/{id}/telemetry); the route is served when given */
  telemetry?: TelemetrySource
  /** telemetry routes (/v1/routes): the service, the sender of `test`, this node's counters; served when given */
  telemetryRoutes?: RouteRoutesOptions
  /** app identities (/v1/apps); served when given */
  apps?: AppService
}

export interface ApiOptions {
  /** per API key; default 20 requests/s, burst 40 */
  rateLimit?: RateLimit
  /** the per-key limiter itself, when the caller reads its refused() count (gatehouse.ts); default: one made from rateLimit */
  limiter?: RateLimiter
  /** where the dashboard's sign-in limits (and the per-key one, unless `limiter` is given) keep their buckets: Redis in a cluster; default memory */
  rateLimiters?: RateLimiterFactory
  /**
   * reverse proxies whose X-Forwarded-For names the client (addresses, CIDRs, proxy-addr's keywords): fastify's
   * `trustProxy`, so `request.ip` is the client's address behind them; default none (the header is ignored)
   */
  trustProxy?: readonly string[]
  /** largest request body, bytes; default 256 KiB */
  bodyLimit?: number
  /**
   * serve HTTPS with this key and certificate chain (PEM); serveApi requires it off loopback. `ticketKeys`: the
   * TLS session ticket keys (48 bytes) shared by the workers serving one port (`--workers`), so a client
   * resumes its session whichever worker takes the connection; else the server's own
   */
  https?: { key: string | Buffer; cert: string | Buffer; ticketKeys?: Buffer }
  /** sessions, live streams and fleet scan of the dashboard */
  dashboard?: DashboardOptions
}

export const DEFAULT_BODY_LIMIT = 256 * 1024
export const API_VERSION = '1.0.0'

/**
 * The HTTP API for apps, built but not listening (docs/conventions.md §15): `app.inject()` in tests,
 * serveApi() in production. Route groups are plugins under /v1; the API-key hook guards every route
 * not marked public; every error leaves as RFC 9457 problem+json.
 */
export function buildApi(deps: ApiDeps, options: ApiOptions = {}): FastifyInstance {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  const random = deps.random ?? cryptoRandom
  const app = fastify({
    loggerInstance: deps.log.child({ module: 'api' }),
    // one line per request from the onResponse hook below: fastify's own would log the URL's query
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => `req-${Buffer.from(random.bytes(8)).toString('hex')}`,
    bodyLimit,
    trustProxy: options.trustProxy?.length ? [...options.trustProxy] : false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    ...(options.https && { https: { ...options.https } }),
  }) as unknown as FastifyInstance

  // JSON only (fastify also parses text/plain by default); PATCH routes add merge-patch+json
  app.removeAllContentTypeParsers()
  addJsonBodyParser(app, 'application/json')
  for (const schema of sharedSchemas) app.addSchema(schema)

  app.setErrorHandler(problemErrorHandler(bodyLimit))
  app.setNotFoundHandler(notFoundHandler)
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    // never the headers, the query or the body: the path, the outcome and who asked
    const path = request.url.split('?')[0]
    const actor = request.apiKey ? `apikey:${request.apiKey.name}` : undefined
    request.log.info({ method: request.method, path, statusCode: reply.statusCode, actor, ms: Math.round(reply.elapsedTime) }, 'request')
  })

  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse API',
        version: API_VERSION,
        description: `Devices and settings of a Gatehouse IoT broker, for apps. Authenticate with an API key (\`gatehouse apikey create\`) as \`Authorization: Bearer ghk_...\`; each endpoint needs one scope (${API_SCOPES.join(', ')}). Errors are RFC 9457 problem details.`,
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'a Gatehouse API key, ghk_<id>_<secret>' } },
      },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'devices', description: 'the device registry' },
        { name: 'settings', description: 'fleet defaults < group < device settings' },
        { name: 'insights', description: 'what the AI bridge said about a device, and its usage' },
        { name: 'tiers', description: "tiers' and devices' limits: broker rates and AI budgets" },
        { name: 'checks', description: "fleet audit checks over the data directory (as 'gatehouse check')" },
        { name: 'health', description: 'liveness and readiness probes, without a key' },
        { name: 'monitoring', description: 'Prometheus metrics' },
        { name: 'apikeys', description: 'API keys, managed by keys with apikeys:admin' },
        { name: 'crl', description: 'certificate revocation lists for relying parties, without a key' },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  })
  const rateLimiters = options.rateLimiters ?? memoryRateLimiters(deps.clock)
  const limiter = options.limiter ?? rateLimiters('api-key', options.rateLimit ?? DEFAULT_RATE_LIMIT)
  app.register(apiKeyAuth, { apiKeys: deps.apiKeys, limiter })

  app.register(healthRoutes, { health: deps.health ?? createHealth({ liveness: {}, readiness: {} }, { log: deps.log }) })
  app.register(async (open) => {
    open.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
    // the device protocol (docs/device-protocol.md), built once from the payload schemas
    const asyncApi = buildAsyncApi(API_VERSION)
    open.get('/asyncapi.json', { config: { public: true }, schema: { hide: true } }, async () => asyncApi)
  })
  app.register(crlRoutes, { authority: deps.authority, clock: deps.clock })
  app.register(devicesRoutes, { prefix: '/v1', authority: deps.authority, settings: deps.settings, presence: deps.presence })
  app.register(deviceLifecycleRoutes, { prefix: '/v1', authority: deps.authority })
  app.register(settingsRoutes, { prefix: '/v1', settings: deps.settings })
  app.register(insightsRoutes, { prefix: '/v1', authority: deps.authority, aiUsage: deps.aiUsage })
  app.register(checksRoutes, { prefix: '/v1', checks: deps.checks, clock: deps.clock })
  if (deps.limits) app.register(tierRoutes, { prefix: '/v1', limits: deps.limits })
  if (deps.telemetry) app.register(telemetryRoutes, { prefix: '/v1', authority: deps.authority, telemetry: deps.telemetry })
  if (deps.telemetryRoutes) app.register(routeRoutes, { prefix: '/v1', ...deps.telemetryRoutes })
  if (deps.apps) app.register(appRoutes, { prefix: '/v1', apps: deps.apps })
  app.register(apiKeysRoutes, { prefix: '/v1', apiKeys: deps.apiKeys, forgetRate: (keyId) => limiter.forget(keyId) })
  if (deps.dashboard) registerDashboard(app, { ...deps, ...deps.dashboard, random, rateLimiters }, options.dashboard)
  if (deps.metrics) app.register(metricsRoutes, { metrics: deps.metrics })
  return app
}
