import type { Server as TlsServer } from 'node:tls'
import type { Logger } from 'pino'
import { attachAiBridge, attachEnrollment, attachSettingsDelivery, createBroker, resolveAiBridgeOptions, type AiBridge, type Broker } from './broker/index.ts'
import { systemClock, type Clock, type Random } from './certs/index.ts'
import { authorityOptions, type Config } from './config.ts'
import { buildApi, isLoopback, serveApi } from './provisioning/api/index.ts'
import {
  createCaReloader,
  createChangeFeed,
  createRegistryDirectory,
  initControlPlane,
  isDeviceEvent,
  loadServerTls,
  openControlPlane,
  type ChangeFeed,
  type ControlEvent,
  type ControlPlane,
} from './provisioning/index.ts'

/**
 * The composition root (docs/conventions.md §1, §13): the only file that imports both planes. `gatehouse
 * start` and the tests wire Gatehouse the same way, through createGatehouse.
 */
export interface GatehouseDeps {
  log: Logger
  clock?: Clock
  random?: Random
  /** the CA passphrase (from GATEHOUSE_CA_PASSPHRASE / _FILE), never from a flag */
  passphrase?: string
  /** GATEHOUSE_SETTINGS_KEY (base64 of 32 bytes); else data/settings.key */
  settingsKey?: string
  /** where AI provider keys are looked up by the names the config gives (process.env for `gatehouse start`) */
  env?: NodeJS.ProcessEnv
}

export interface Gatehouse {
  control: ControlPlane
  feed: ChangeFeed
  broker: Broker
  mqtt: { host: string; port: number }
  /** the app HTTP API */
  http: { url: string; port: number }
  /** the AI bridge, unless aiEnabled is false */
  ai: AiBridge | undefined
  close(): Promise<void>
}

/**
 * What the AI bridge needs of a device (tier, group, settings with secrets masked: nothing secret
 * leaves for an AI service), cached per device and dropped on any control event about it, so
 * telemetry does not cost SQLite reads on the broker's event loop.
 */
function cachedDeviceContexts(control: ControlPlane, events: { onEvent(l: (e: ControlEvent) => void): () => void }) {
  const cache = new Map<string, { tier: string; group: string | null; settings: Record<string, unknown> } | undefined>()
  events.onEvent((e) => {
    if (isDeviceEvent(e)) cache.delete(e.deviceId)
  })
  return {
    get(deviceId: string) {
      if (cache.has(deviceId)) return cache.get(deviceId)
      const device = control.store.getDevice(deviceId)
      const context = device && device.status === 'active' ? { tier: device.tier, group: device.group, settings: control.settings.getDevice(deviceId).desired } : undefined
      if (cache.size > 100_000) cache.clear()
      cache.set(deviceId, context)
      return context
    },
  }
}

/** Who is connected now, and when each device was last seen (connect or disconnect), for the API. */
function trackPresence(broker: Broker, clock: Clock) {
  const lastSeen = new Map<string, Date>()
  broker.onDeviceConnect(({ deviceId }) => lastSeen.set(deviceId, clock.now()))
  broker.onDeviceDisconnect(({ deviceId }) => lastSeen.set(deviceId, clock.now()))
  return {
    isConnected: (deviceId: string) => broker.isConnected(deviceId),
    lastSeen: (deviceId: string) => (broker.isConnected(deviceId) ? clock.now() : (lastSeen.get(deviceId) ?? null)),
  }
}

/** Runs Gatehouse: control plane, change feed and the mTLS MQTT broker, on embedded defaults. */
export async function startGatehouse(config: Readonly<Config>, deps: GatehouseDeps): Promise<Gatehouse> {
  const clock = deps.clock ?? systemClock
  const log = deps.log
  await initControlPlane(config.dataDir, { keyAlgorithm: config.keyAlgorithm, hostnames: [...config.hostnames] }, deps, 'gatehouse')
  const enrollmentOptions = {
    renewalWindow: config.renewalWindow,
    claimRequestRate: { ...config.claimRequestRate },
    ...(config.limits.auditIntervalMs !== undefined && { auditIntervalMs: config.limits.auditIntervalMs }),
  }
  const control = await openControlPlane(config.dataDir, { ...authorityOptions(config), ...enrollmentOptions }, deps)
  const tls = await loadServerTls(config.dataDir, deps.passphrase)
  const feed = createChangeFeed({ store: control.store, clock, log: log.child({ module: 'provisioning.feed' }) }, { intervalMs: config.changeFeedIntervalMs })
  const directory = createRegistryDirectory({ store: control.store, claims: control.claims, feed, clock, log: log.child({ module: 'provisioning.directory' }) })
  const broker = createBroker(
    { directory, clock, log },
    { host: config.host, port: config.mqttPort, tls, limits: config.limits, proxyProtocol: config.proxyProtocol },
  )
  const detachEnrollment = attachEnrollment(broker, { service: control.enrollment, log, clock }, { ...(config.limits.auditIntervalMs !== undefined && { auditIntervalMs: config.limits.auditIntervalMs }) })
  const detachSettings = attachSettingsDelivery(broker, {
    source: { current: async (id) => control.settings.deliverable(id), report: (id, payload) => control.settings.report(id, payload) },
    events: directory,
    log,
    clock,
  })
  const api = buildApi(
    { authority: control.authority, settings: control.settings, apiKeys: control.apiKeys, aiUsage: control.aiUsage, presence: trackPresence(broker, clock), clock, log },
    { rateLimit: { ...config.httpRateLimit }, ...(!isLoopback(config.httpHost) && { https: { key: tls.key, cert: tls.cert } }) },
  )
  const aiContexts = cachedDeviceContexts(control, directory)
  const ai: AiBridge | undefined = !config.aiEnabled ? undefined : attachAiBridge(
    broker,
    {
      clock,
      log,
      usage: control.aiUsage,
      insights: control.aiUsage,
      // provider keys are named in the config and read from the environment, never logged
      secret: (name) => deps.env?.[name],
      deviceContext: aiContexts.get,
    },
    resolveAiBridgeOptions(config.ai),
  )
  // `gatehouse ca rotate` (another process): reload the CA, then the broker's and the HTTPS API's TLS
  const caReloader = createCaReloader({
    control,
    dataDir: config.dataDir,
    ...(deps.passphrase !== undefined && { passphrase: deps.passphrase }),
    log: log.child({ module: 'provisioning.ca' }),
    applyTls: (next) => {
      broker.setTls(next)
      if (!isLoopback(config.httpHost)) (api.server as unknown as TlsServer).setSecureContext({ key: next.key, cert: next.cert })
    },
  })
  feed.onEvent(caReloader.onEvent)
  feed.start()
  let mqtt: { host: string; port: number }
  let http: { url: string; port: number; close(): Promise<void> }
  try {
    mqtt = await broker.listen()
    http = await serveApi(api, { host: config.httpHost, port: config.httpPort, allowInsecureHttp: config.httpAllowInsecure })
  } catch (err) {
    feed.stop()
    detachSettings()
    detachEnrollment()
    await ai?.detach()
    await broker.close()
    control.close()
    throw err
  }
  // The CRL is reissued on every revocation; this keeps it fresh well before nextUpdate (currentCrl
  // reissues once it is half-way there) for relying parties that fetch it with `gatehouse crl`.
  let crlRefresh: Promise<unknown> = Promise.resolve()
  const refreshCrl = () => {
    crlRefresh = control.authority.currentCrls().catch((err: unknown) => log.error({ err }, 'CRL refresh failed'))
    caReloader.check()
  }
  refreshCrl()
  const crlTimer = setInterval(refreshCrl, 3600_000)
  crlTimer.unref()
  let closed: Promise<void> | undefined
  return {
    control,
    feed,
    broker,
    mqtt,
    http: { url: http.url, port: http.port },
    ai,
    close() {
      closed ??= (async () => {
        clearInterval(crlTimer)
        await crlRefresh
        await caReloader.idle()
        await http.close()
        feed.stop()
        detachSettings()
        detachEnrollment()
        await ai?.detach()
        await broker.close()
        control.close()
      })()
      return closed
    },
  }
}
