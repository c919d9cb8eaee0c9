import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import type { Server as TlsServer } from 'node:tls'
import type { Logger } from 'pino'
import {
  attachAiBridge,
  attachEnrollment,
  attachRenewalNotices,
  attachSettingsDelivery,
  attachTelemetryRoutes,
  clusterRateLimiter,
  connectCluster,
  createHttpAgents,
  deliverBatch,
  createBroker,
  resolveAiBridgeOptions,
  routeFor,
  trackConnectionHistory,
  trackTelemetry,
  trackPresence,
  workerId,
  type AiBridge,
  type Broker,
  type ClusterBackend,
  type TelemetryRoutes,
} from './broker/index.ts'
import { parseCertificatesPem, systemClock, systemTimers, type Clock, type Random } from './certs/index.ts'
import { authorityOptions, caSyncSecret, type Config } from './config.ts'
import {
  buildApi,
  countRefusals,
  isLoopback,
  memoryRateLimiters,
  serveApi,
  serveMetrics,
  type RateLimiterFactory,
} from './provisioning/api/index.ts'
import { createMetrics, type Metrics } from './provisioning/metrics/index.ts'
import {
  caCheck,
  cachedDeviceContexts,
  cachedLimits,
  changeFeedCheck,
  createChangeFeed,
  createLastSeenRecorder,
  createHealth,
  createRegistryDirectory,
  databaseCheck,
  eventLoopCheck,
  initControlPlane,
  keepCaCurrent,
  loadServerTls,
  monitorEventLoop,
  type EventLoopDelay,
  openControlPlane,
  type ChangeFeed,
  type ControlPlane,
  type Health,
  type RouteTester,
} from './provisioning/index.ts'
import type { FleetSignals } from './provisioning/dashboard/index.ts'

/**
 * The composition root (docs/conventions.md §1, §13): the only file that wires both planes together. `gatehouse
 * start` and the tests wire Gatehouse the same way, through startGatehouse.
 */
export interface GatehouseDeps {
  log: Logger
  clock?: Clock
  random?: Random
  /** the CA passphrase (from GATEHOUSE_CA_PASSPHRASE / _FILE), never from a flag */
  passphrase?: string
  /** the user PIN of the PKCS#11 token holding the CA keys (GATEHOUSE_PKCS11_PIN / _FILE), never from a flag */
  pkcs11Pin?: string
  /** GATEHOUSE_SETTINGS_KEY (base64 of 32 bytes); else data/settings.key */
  settingsKey?: string
  /** where AI provider keys are looked up by the names the config gives (process.env for `gatehouse start`) */
  env?: NodeJS.ProcessEnv
  /** TLS session ticket keys shared by the workers serving one port (workers.ts); else the process's own */
  ticketKeys?: Buffer
  /** the CA sync secret (config caSyncSecretFile, read by startGatehouse): opens the CA keys a shared registry carries */
  caSyncSecret?: Uint8Array
}

export interface Gatehouse {
  control: ControlPlane
  feed: ChangeFeed
  broker: Broker
  /** the MQTT listener, and the WebSocket one (`ws`) when wsPort is configured */
  mqtt: { host: string; port: number; ws: { host: string; port: number } | null }
  /** the app HTTP API */
  http: { url: string; port: number }
  /** the separate metrics listener, when metricsPort is configured (else /metrics is on the API) */
  metricsHttp: { url: string; port: number } | undefined
  /** the AI bridge, unless aiEnabled is false */
  ai: AiBridge | undefined
  /** telemetry routes to HTTP endpoints (counters per route) */
  routes: TelemetryRoutes
  close(): Promise<void>
}

// `--workers` (broker/workers.ts): the primary supervises, each worker runs startGatehouse
export { leaveWorkers, receiveTicketKeys, reportListening, superviseWorkers, workerId } from './broker/index.ts'

/** How many broker processes `gatehouse start` runs: cluster.workers, by default one per core in a cluster, else 1. */
export function workerCount(config: Readonly<Config>): number {
  return config.cluster ? (config.cluster.workers ?? availableParallelism()) : 1
}

/**
 * The change feed's poll interval: changeFeedIntervalMs when set, else 200 ms on SQLite (polling is how it
 * sees the CLI's and other processes' commits) and 1000 ms on PostgreSQL, where every node's LISTEN wakes
 * the feed at each commit that appended events (and after each reconnect of LISTEN), so the poll is only a
 * safety net: a second bounds a missed wake-up to the revocation target and costs each node one query a second.
 */
function changeFeedIntervalMs(config: Readonly<Config>): number {
  return config.changeFeedIntervalMs ?? (config.databaseUrl === undefined ? 200 : 1000)
}

/**
 * The PostgreSQL registry's pool of this process (docs/deployment.md): `databasePoolSize` is one `gatehouse start`'s,
 * divided among its workers when this process is one (each worker opens its own pool), at least 2 each.
 */
export function databasePool(config: Readonly<Config>, inWorker = workerId() !== undefined) {
  const share = inWorker ? workerCount(config) : 1
  return { poolSize: Math.max(2, Math.floor(config.databasePoolSize / share)), statementTimeoutMs: config.databaseStatementTimeoutMs }
}

/** Runs Gatehouse: control plane, change feed and the mTLS MQTT broker, on embedded defaults. */
export async function startGatehouse(config: Readonly<Config>, deps: GatehouseDeps): Promise<Gatehouse> {
  // the registry on PostgreSQL when configured; the CA, keys and bundles stay in the data directory either way
  const controlDeps = {
    ...deps,
    ...(config.databaseUrl !== undefined && { databaseUrl: config.databaseUrl, databasePool: databasePool(config) }),
  }
  const syncSecret = caSyncSecret(config) // read (and checked) before anything starts
  await initControlPlane(config.dataDir, { keyAlgorithm: config.keyAlgorithm, hostnames: [...config.hostnames] }, controlDeps, 'gatehouse')
  // a node of a cluster: Redis must answer now (GH_BROKER_CLUSTER_UNREACHABLE); closed last
  const cluster = config.cluster && (await connectCluster(config.cluster, { log: deps.log }))
  const rateLimiters = rateLimitersOf(cluster, deps.clock ?? systemClock)
  const enrollmentOptions = {
    renewalWindow: config.renewalWindow,
    claimRequestRate: { ...config.claimRequestRate },
    auditIntervalMs: config.limits.auditIntervalMs,
    rateLimiters,
  }
  // one list of closers, run in reverse order by close() and when starting fails half-way
  const closers: (() => unknown)[] = cluster ? [() => cluster.close()] : []
  const closeAll = async () => {
    for (const close of closers.reverse()) await close()
  }
  try {
    const control = await openControlPlane(config.dataDir, { ...authorityOptions(config), ...enrollmentOptions }, controlDeps)
    closers.push(() => control.close())
    const started = await startServices(config, { ...deps, ...(syncSecret && { caSyncSecret: syncSecret }) }, control, closers, {
      cluster,
      rateLimiters,
    })
    let closed: Promise<void> | undefined
    return { ...started, close: () => (closed ??= closeAll()) }
  } catch (err) {
    await closeAll()
    throw err
  }
}

/**
 * Where the control plane's rate limits (API keys, claims, dashboard sign-in) keep their buckets: in a
 * cluster, Redis, with the broker's rate-limiter-flexible limiter, so every worker and node spends one budget
 * (a key gets its limit, not N times it); else this process's memory.
 */
function rateLimitersOf(cluster: ClusterBackend | undefined, clock: Clock): RateLimiterFactory & { refusedBy(prefix: string): number } {
  const make: RateLimiterFactory = cluster
    ? (name, limit) => countRefusals(clusterRateLimiter(cluster.redis, `gh:rate:${name}`, limit))
    : memoryRateLimiters(clock)
  // every limiter made, by name, for gatehouse_limit_hits_total
  const made: { name: string; limiter: ReturnType<RateLimiterFactory> }[] = []
  const factory: RateLimiterFactory = (name, limit) => {
    const limiter = make(name, limit)
    made.push({ name, limiter })
    return limiter
  }
  const refusedBy = (prefix: string) => made.reduce((n, m) => n + (m.name.startsWith(prefix) ? m.limiter.refused() : 0), 0)
  return Object.assign(factory, { refusedBy })
}

/**
 * GET /healthz and /readyz (docs/architecture.md, "Health"): each plane checks what it owns, named here.
 * The event-loop monitor runs from its creation until close.
 */
function healthChecks(
  log: Logger,
  clock: Clock,
  control: ControlPlane,
  feed: ChangeFeed,
  broker: Broker,
  eventLoop: EventLoopDelay,
  caSyncProblem: () => Error | undefined,
): Health {
  return createHealth(
    {
      liveness: { eventLoop: eventLoopCheck(eventLoop) },
      readiness: {
        database: databaseCheck(control.store, clock),
        ca: caCheck(control.authority, clock, caSyncProblem),
        mqtt: () => broker.acceptsConnections(),
        changeFeed: changeFeedCheck(feed, clock),
      },
    },
    { log: log.child({ module: 'provisioning.health' }) },
  )
}

/** Everything after the control plane, each closer pushed as soon as its part exists. */
async function startServices(
  config: Readonly<Config>,
  deps: GatehouseDeps,
  control: ControlPlane,
  closers: (() => unknown)[],
  shared: { cluster: ClusterBackend | undefined; rateLimiters: ReturnType<typeof rateLimitersOf> },
): Promise<Omit<Gatehouse, 'close'>> {
  const { cluster, rateLimiters } = shared
  const clock = deps.clock ?? systemClock
  const log = deps.log
  let tls = await loadServerTls(config.dataDir, deps.passphrase)
  // parsed in depth now: @peculiar/x509 loads on first use (issue 14), and its load and first parse (hundreds
  // of ms, synchronous) must not fall inside a running server, where the health check's eventLoop would fail
  caCertificates(tls.ca)
  const feed = await createChangeFeed(
    { store: control.store, clock, log: log.child({ module: 'provisioning.feed' }) },
    { intervalMs: changeFeedIntervalMs(config) },
  )
  const directory = createRegistryDirectory({
    store: control.store,
    claims: control.claims,
    apps: control.apps,
    feed,
    clock,
    log: log.child({ module: 'provisioning.directory' }),
  })
  // pushed before the broker: closing the broker reports its disconnects, then the last sightings are written
  const lastSeen = createLastSeenRecorder({
    store: control.store,
    clock,
    timers: systemTimers,
    log: log.child({ module: 'provisioning.last-seen' }),
  })
  closers.push(() => lastSeen.close())
  const broker = createBroker(
    { directory, clock, log, limitsSource: control.limits, ...(cluster && { cluster }) },
    {
      host: config.host,
      port: config.mqttPort,
      ...(config.wsPort !== undefined && { wsPort: config.wsPort }),
      tls,
      ...(deps.ticketKeys && { ticketKeys: deps.ticketKeys }),
      limits: config.limits,
      proxyProtocol: config.proxyProtocol,
    },
  )
  closers.push(() => broker.close())
  broker.onDeviceConnect(({ deviceId }) => lastSeen.seen(deviceId))
  broker.onDeviceDisconnect(({ deviceId }) => lastSeen.seen(deviceId))
  const presence = trackPresence(broker, clock)
  const connections = trackConnectionHistory(broker, clock)
  closers.push(() => connections.close())
  const telemetry = trackTelemetry(broker)
  closers.push(() => telemetry.close())
  closers.push(attachEnrollment(broker, { service: control.enrollment, log, clock }, { auditIntervalMs: config.limits.auditIntervalMs }))
  closers.push(attachRenewalNotices(broker, { windowOpens: control.enrollment.renewAfterOf, clock, timers: systemTimers, log }))
  closers.push(
    attachSettingsDelivery(broker, {
      source: { current: async (id) => control.settings.deliverable(id), report: (id, payload) => control.settings.report(id, payload) },
      events: directory,
      log,
      clock,
    }),
  )
  const aiOptions = config.aiEnabled ? resolveAiBridgeOptions(config.ai) : undefined
  const ai = aiOptions && startAiBridge(aiOptions, deps, control, broker, directory)
  if (ai) closers.push(() => ai.detach())
  const routes = startTelemetryRoutes(config, deps, control, broker, directory)
  closers.push(() => routes.detach())
  const apiLimiter = rateLimiters('api-key', { ...config.httpRateLimit })
  const metrics = createMetrics({
    broker,
    controlLimitHits: () => ({
      'api-rate': apiLimiter.refused(),
      'claim-rate': control.enrollment.claimRateLimited(),
      'sign-in-rate': rateLimiters.refusedBy('sign-in'),
    }),
    ...(ai && { ai }),
    routes,
    feed,
    registry: control.store,
    settings: control.settings,
    lookups: directory.latency,
    auditsDropped: directory.auditsDropped,
    caCertificates: () => caCertificates(tls.ca),
    clock,
    build: { version: PACKAGE_VERSION },
  })
  const metricsOnApi = config.metricsPort === undefined
  let ca: ReturnType<typeof keepCaCurrent> | undefined // made below, once the API it reloads exists; /readyz reads its sync problem
  const eventLoop = monitorEventLoop()
  closers.push(() => eventLoop.stop())
  // HTTPS off loopback always, on loopback when asked (httpTls); the workers' shared ticket keys as the broker's
  const apiTls = config.httpTls || !isLoopback(config.httpHost)
  const ticketKeys = deps.ticketKeys && { ticketKeys: deps.ticketKeys }
  const api = buildApi(
    {
      health: healthChecks(log, clock, control, feed, broker, eventLoop, () => ca?.syncProblem()),
      authority: control.authority,
      settings: control.settings,
      apiKeys: control.apiKeys,
      aiUsage: control.aiUsage,
      checks: control.checks,
      limits: control.limits,
      telemetry,
      telemetryRoutes: { routes: control.routes, tester: routeTester(config), status: routes.status },
      apps: control.apps,
      // this process's view first, then what an earlier run persisted
      presence: { isConnected: presence.isConnected, lastSeen: async (id) => presence.lastSeen(id) ?? (await control.store.lastSeen(id)) },
      clock,
      log,
      dashboard: {
        signals: fleetSignals(broker, feed, ai, connections.history),
        // in the registry's database: every worker and node sees them, and a restart keeps them
        sessions: control.store.dashboardSessions,
        audit: async (entry) => void (await control.store.appendAudit(entry)),
        // the configured route's budget under the tier's and the device's stored values (as the bridge spends it)
        aiBudget: async (deviceId, tier) => {
          if (!aiOptions) return null
          const { dailyRequests, dailyTokens } = {
            ...routeFor(aiOptions, deviceId, tier).limits,
            ...(await control.limits.limitsOf(deviceId))?.ai,
          }
          return { dailyRequests, dailyTokens }
        },
      },
      ...(metricsOnApi && { metrics }),
    },
    {
      limiter: apiLimiter,
      rateLimiters,
      trustProxy: config.httpTrustProxy,
      ...(apiTls && { https: { key: tls.key, cert: tls.cert, ...ticketKeys } }),
    },
  )
  // `gatehouse ca rotate` (another process; on a shared registry, another machine too): reload the CA, then the
  // broker's and the HTTPS API's TLS
  const keeper = keepCaCurrent({
    control,
    feed,
    dataDir: config.dataDir,
    ...(deps.passphrase !== undefined && { passphrase: deps.passphrase }),
    log,
    applyTls: (next) => {
      tls = next
      broker.setTls(next)
      // a new secure context takes new ticket keys unless given the shared ones
      if (apiTls) (api.server as unknown as TlsServer).setSecureContext({ key: next.key, cert: next.cert, ...ticketKeys })
    },
    ...(config.databaseUrl !== undefined && {
      shared: {
        clock,
        ...(deps.caSyncSecret && { caSyncSecret: deps.caSyncSecret }),
        ...(deps.pkcs11Pin !== undefined && { pkcs11Pin: deps.pkcs11Pin }),
      },
    }),
  })
  ca = keeper
  closers.push(() => keeper.close())
  feed.start()
  closers.push(() => feed.stop())
  const mqtt = await broker.listen()
  const http = await serveApi(api, { host: config.httpHost, port: config.httpPort, allowInsecureHttp: config.httpAllowInsecure })
  closers.push(() => http.close())
  const metricsHttp = await serveMetricsApart(config, metrics, log)
  if (metricsHttp) closers.push(() => metricsHttp.close())
  // start-up's own synchronous work (CA, listeners) is not a blocked event loop: liveness's first window opens now
  eventLoop.takeMaxMs()
  return {
    control,
    feed,
    broker,
    mqtt,
    http: { url: http.url, port: http.port },
    metricsHttp: metricsHttp && { url: metricsHttp.url, port: metricsHttp.port },
    ai,
    routes,
  }
}

/**
 * Sends `route test`'s sample batch the way the broker sends batches (signed, same SSRF rule); the CLI
 * takes it from here too, so the sender is the broker's one.
 */
export function routeTester(config: Readonly<Config>): RouteTester {
  return async (route, messages) => {
    const agents = createHttpAgents(1)
    try {
      return await deliverBatch(
        route,
        messages,
        { timeoutMs: config.routes.timeoutMs, allowPrivateTargets: config.routes.allowPrivateTargets },
        { agents, timers: systemTimers, clock: systemClock },
      )
    } finally {
      agents.destroy()
    }
  }
}

/** Telemetry routes: the registry's routes, reloaded on route.changed (docs/architecture.md, "Telemetry routes"). */
function startTelemetryRoutes(
  config: Readonly<Config>,
  deps: GatehouseDeps,
  control: ControlPlane,
  broker: Broker,
  directory: ReturnType<typeof createRegistryDirectory>,
): TelemetryRoutes {
  return attachTelemetryRoutes(
    broker,
    {
      clock: deps.clock ?? systemClock,
      log: deps.log,
      routes: () => control.routes.records(),
      onEvent: (listener) => directory.onEvent(listener),
      deviceContext: cachedDeviceContexts(control, directory).get,
      redaction: resolveAiBridgeOptions(config.ai),
    },
    config.routes,
  )
}

/** What the dashboard's live view follows: the broker's connects, disconnects and refusals and the change feed. */
function fleetSignals(
  broker: Broker,
  feed: ChangeFeed,
  ai: AiBridge | undefined,
  connectionHistory: FleetSignals['connectionHistory'],
): FleetSignals {
  return {
    connectionHistory,
    connectedDeviceIds: () => broker.connectedDeviceIds(),
    busiestDevices: () => broker.busiestDevices(10),
    aiThrottledByTier: () => ai?.stats().throttledByTier ?? {},
    onChange(listener) {
      const offs = [
        feed.onEvent(() => listener()),
        broker.onDeviceConnect(() => listener()),
        broker.onDeviceDisconnect(() => listener()),
        broker.onConnectionRefused(() => listener()),
      ]
      return () => {
        for (const off of offs) off()
      }
    },
  }
}

function startAiBridge(
  options: ReturnType<typeof resolveAiBridgeOptions>,
  deps: GatehouseDeps,
  control: ControlPlane,
  broker: Broker,
  directory: ReturnType<typeof createRegistryDirectory>,
): AiBridge {
  const limits = cachedLimits(control.limits, directory)
  return attachAiBridge(
    broker,
    {
      clock: deps.clock ?? systemClock,
      log: deps.log,
      usage: control.aiUsage,
      insights: control.aiUsage,
      // provider keys are named in the config and read from the environment, never logged
      secret: (name) => deps.env?.[name],
      deviceContext: cachedDeviceContexts(control, directory).get,
      // the tier's and the device's AI budgets in the registry, over the configured ones (cached until an event changes them)
      limitsOf: async (deviceId) => (await limits.limitsOf(deviceId))?.ai,
    },
    options,
  )
}

/** /metrics on its own listener when the operator configured metricsPort (docs/architecture.md, "Metrics"). */
async function serveMetricsApart(config: Readonly<Config>, metrics: Metrics, log: Logger) {
  if (config.metricsPort === undefined) return undefined
  return serveMetrics(metrics, { host: config.metricsHost, port: config.metricsPort, log })
}

/** The CA certificates in the trust chain the broker serves: a self-signed one is the root. */
function caCertificates(chainPem: string): { role: 'root' | 'issuing'; notAfter: Date }[] {
  return parseCertificatesPem(chainPem).map((c) => ({ role: c.subject === c.issuer ? 'root' : 'issuing', notAfter: c.notAfter }))
}

const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).version
