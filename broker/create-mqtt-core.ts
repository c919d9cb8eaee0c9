import { Aedes, type Client } from 'aedes'
import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { normalizeSerial, type Clock } from '../certs/index.ts'
import type { ControlEvent, DeviceDirectory } from './device-directory.ts'
import { TopicNotDeviceBound } from './errors.ts'
import { createEventThrottle } from './event-throttle.ts'
import { guardDirectory } from './guard-directory.ts'
import { guardFrameSize } from './frame-size-guard.ts'
import { createAuthenticate } from './hooks/authenticate.ts'
import { createAuthorizePublish } from './hooks/authorize-publish.ts'
import { createAuthorizeSubscribe } from './hooks/authorize-subscribe.ts'
import { BROKER_ACTOR, throttledAudit, type ConnectionContext, type HookDeps } from './hooks/hook-deps.ts'
import { createPreConnect } from './hooks/pre-connect.ts'
import type { BrokerLimits } from './limits.ts'
import { createSessionRegistry, type Session } from './sessions.ts'
import { createKeyedTokenBuckets } from './token-bucket.ts'
import { isBrokerToDeviceKind, parseDeviceTopic, type DeviceTopicKind } from './topics.ts'

export interface BrokerDeps {
  directory: DeviceDirectory
  log: Logger
  clock: Clock
}

/** A device's accepted PUBLISH (telemetry, settings/reported), after authorization. */
export interface DevicePublish {
  deviceId: string
  topic: string
  kind: DeviceTopicKind
  /** levels below devices/{id}/telemetry */
  subtopic: string[]
  payload: Buffer
  qos: 0 | 1 | 2
}

/** A device's SUBSCRIBE, with the filters that were granted (refused ones left out). */
export interface DeviceSubscribe {
  deviceId: string
  filters: { topic: string; qos: 0 | 1 | 2 }[]
}

export interface DeviceConnection {
  deviceId: string
  serial: string
  tier: string
  group: string | null
  remoteAddress: string | null
}

export interface PublishToDeviceOptions {
  qos?: 0 | 1 | 2
  retain?: boolean
}

export type Unsubscribe = () => void

/**
 * The MQTT data plane without sockets: aedes with the Gatehouse hooks, sessions, live revocation and
 * the listener API that settings delivery and the AI bridge hook into. create-broker.ts puts a TLS
 * listener in front; unit tests drive `handle()` over in-memory duplex streams (CONVENTIONS.md §24).
 */
export interface MqttCore {
  readonly aedes: Aedes
  start(): Promise<void>
  /** Serves one connection (a TLSSocket in production): packet-size guard, then aedes. */
  handle(conn: Duplex): Client
  close(): Promise<void>
  /** Devices with an authenticated session that is not closed (from the moment CONNACK 0 is decided). */
  connectedDeviceIds(): string[]
  isConnected(deviceId: string): boolean
  connection(deviceId: string): DeviceConnection | undefined
  /** Publishes to devices/{id}/settings or devices/{id}/insights (bypasses device authorization). */
  publishToDevice(topic: string, payload: Buffer | Uint8Array | string, options?: PublishToDeviceOptions): Promise<void>
  /** Closes a device's live session (audited as session.closed); false when it was not connected. */
  disconnectDevice(deviceId: string, reason: string): boolean
  onDevicePublish(listener: (message: DevicePublish) => void): Unsubscribe
  onDeviceSubscribe(listener: (subscription: DeviceSubscribe) => void): Unsubscribe
  onDeviceConnect(listener: (connection: DeviceConnection) => void): Unsubscribe
  onDeviceDisconnect(listener: (connection: DeviceConnection & { reason: string }) => void): Unsubscribe
}

/** Control events that end sessions; certificate events only end a session on that serial. */
const CLOSING_EVENTS: ReadonlySet<ControlEvent['type']> = new Set([
  'device.revoked',
  'device.disabled',
  'certificate.revoked',
  'certificate.superseded',
])

export function createMqttCore(brokerDeps: BrokerDeps, limits: Readonly<BrokerLimits>): MqttCore {
  const log = brokerDeps.log.child({ module: 'broker.sessions' })
  const deps: BrokerDeps = { ...brokerDeps, directory: guardDirectory(brokerDeps.directory, log) }
  let closed = false
  const sessions = createSessionRegistry()
  const connections = new WeakMap<Client, ConnectionContext>()
  const throttle = createEventThrottle({ intervalMs: limits.auditIntervalMs, maxKeys: limits.maxTrackedKeys }, deps.clock)

  function closeSession(session: Session, reason: string, details: Record<string, unknown> = {}): void {
    if (session.client.closed) return
    session.closedBy = reason
    deps.directory.audit({
      actor: BROKER_ACTOR,
      action: 'session.closed',
      subject: session.deviceId,
      details: { reason, serial: session.serial, remoteAddress: session.remoteAddress, ...details },
    })
    log.info({ deviceId: session.deviceId, serial: session.serial, remoteAddress: session.remoteAddress, reason }, 'session closed')
    session.client.close()
  }

  const hookDeps: HookDeps = {
    ...deps,
    limits,
    sessions,
    connections,
    throttle,
    publishMessages: createKeyedTokenBuckets({ ...limits.publishRate, maxKeys: limits.maxTrackedKeys }, deps.clock),
    publishBytes: createKeyedTokenBuckets({ ...limits.publishBytesRate, maxKeys: limits.maxTrackedKeys }, deps.clock),
  }

  const aedes = new Aedes({
    preConnect: createPreConnect(hookDeps),
    authenticate: createAuthenticate(hookDeps),
    authorizePublish: createAuthorizePublish(hookDeps),
    authorizeSubscribe: createAuthorizeSubscribe(hookDeps),
    connectTimeout: limits.connectTimeoutMs,
    drainTimeout: limits.drainTimeoutMs,
    // keepalive bounds are checked in authenticate (aedes' keepaliveLimit answers CONNACK 6, which
    // MQTT 3.1.1 does not define), and MQTT 3.1 clients may use device ids up to 64 characters.
    keepaliveLimit: 0,
    maxClientsIdLength: 64,
  })

  const publishListeners = new Set<(m: DevicePublish) => void>()
  const subscribeListeners = new Set<(s: DeviceSubscribe) => void>()
  const connectListeners = new Set<(c: DeviceConnection) => void>()
  const disconnectListeners = new Set<(c: DeviceConnection & { reason: string }) => void>()
  const sessionOf = (client: Client | null) => (client ? connections.get(client)?.session ?? undefined : undefined)

  function notify<T>(listeners: Set<(value: T) => void>, value: T, what: string): void {
    for (const listener of listeners) {
      try {
        listener(value)
      } catch (err) {
        log.error({ err, event: what }, 'broker listener failed')
      }
    }
  }

  aedes.on('publish', (packet, client) => {
    const session = sessionOf(client)
    if (!session || publishListeners.size === 0) return
    const parsed = parseDeviceTopic(packet.topic)
    if (!parsed || parsed.deviceId !== session.deviceId) return
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    notify(publishListeners, { deviceId: session.deviceId, topic: packet.topic, kind: parsed.kind, subtopic: parsed.subtopic, payload, qos: packet.qos }, 'publish')
  })
  aedes.on('subscribe', (subscriptions, client) => {
    const session = sessionOf(client)
    if (!session) return
    const filters = subscriptions.filter((s) => s.qos <= 2).map((s) => ({ topic: s.topic, qos: s.qos }))
    if (filters.length > 0) notify(subscribeListeners, { deviceId: session.deviceId, filters }, 'subscribe')
  })
  aedes.on('clientReady', (client) => {
    const session = sessionOf(client)
    if (!session) return
    log.info({ deviceId: session.deviceId, serial: session.serial, remoteAddress: session.remoteAddress }, 'device connected')
    notify(connectListeners, describe(session), 'connect')
  })
  aedes.on('clientDisconnect', (client) => {
    const session = sessionOf(client)
    if (!session) return
    const reason = session.closedBy ?? 'client'
    log.info({ deviceId: session.deviceId, serial: session.serial, remoteAddress: session.remoteAddress, reason }, 'device disconnected')
    notify(disconnectListeners, { ...describe(session), reason }, 'disconnect')
  })
  aedes.on('clientError', (client, err) => {
    log.debug({ deviceId: sessionOf(client)?.deviceId ?? null, clientId: client.id, err }, 'client error')
  })
  aedes.on('connectionError', (client, err) => {
    log.debug({ clientId: client.id, err }, 'connection error')
  })
  ;(aedes as EventEmitter).on('error', (err: unknown) => log.error({ err }, 'aedes error'))

  // Live revocation: close matching sessions at once; never cache anything from events.
  const unsubscribeEvents = deps.directory.onEvent((event) => {
    if (!CLOSING_EVENTS.has(event.type) || closed) return
    let serial: string | null = null
    if ('serial' in event) {
      try {
        serial = normalizeSerial(event.serial)
      } catch (err) {
        // Fail closed: an unreadable serial on a revocation closes whatever session the device has.
        log.warn({ err, deviceId: event.deviceId, event: event.type }, 'control event with unreadable serial')
      }
    }
    const session = sessions.invalidate(event.deviceId, serial, event.type)
    if (session) closeSession(session, event.type)
  })

  return {
    aedes,
    async start() {
      await aedes.listen()
    },
    handle(conn) {
      guardFrameSize(conn, limits.maxPacketBytes, (violation) => {
        const client = (conn as Duplex & { client?: Client }).client ?? null
        const session = sessionOf(client)
        const remoteAddress = (conn as { remoteAddress?: string }).remoteAddress ?? null
        const declaredBytes = violation.kind === 'too-large' ? violation.declaredBytes : null
        const fields = { deviceId: session?.deviceId ?? null, remoteAddress, declaredBytes, maxPacketBytes: limits.maxPacketBytes, code: 'GH_BROKER_PACKET_TOO_LARGE' }
        if (session) {
          session.closedBy = violation.kind === 'too-large' ? 'packet-too-large' : 'malformed-packet'
          throttledAudit(
            { throttle, directory: deps.directory },
            log,
            `session.closed:${session.deviceId}`,
            {
              actor: BROKER_ACTOR,
              action: 'session.closed',
              subject: session.deviceId,
              details: { reason: session.closedBy, declaredBytes, serial: session.serial, remoteAddress },
            },
            fields,
            'packet too large',
          )
        } else {
          const hit = throttle.hit(`packet.too-large:${remoteAddress}`)
          if (hit.emit) log.info({ ...fields, suppressed: hit.suppressed }, 'packet too large')
        }
        conn.destroy()
      })
      return aedes.handle(conn)
    },
    async close() {
      if (closed) return
      closed = true
      unsubscribeEvents()
      // The broker is going away, not the devices: no wills on shutdown.
      for (const session of sessions.all()) session.closedBy ??= 'shutdown'
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    },
    connectedDeviceIds() {
      const ids: string[] = []
      for (const s of sessions.all()) if (!s.client.closed) ids.push(s.deviceId)
      return ids
    },
    isConnected(deviceId) {
      const s = sessions.get(deviceId)
      return s !== undefined && !s.client.closed
    },
    connection(deviceId) {
      const s = sessions.get(deviceId)
      return s && !s.client.closed ? describe(s) : undefined
    },
    async publishToDevice(topic, payload, options = {}) {
      const parsed = parseDeviceTopic(topic)
      if (!parsed || !isBrokerToDeviceKind(parsed.kind)) throw new TopicNotDeviceBound(topic)
      const packet = {
        cmd: 'publish' as const,
        topic,
        payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
        qos: options.qos ?? 1,
        retain: options.retain ?? false,
        dup: false,
      }
      await new Promise<void>((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())))
    },
    disconnectDevice(deviceId, reason) {
      const s = sessions.get(deviceId)
      if (!s || s.client.closed) return false
      closeSession(s, reason)
      return true
    },
    onDevicePublish: (l) => subscribeTo(publishListeners, l),
    onDeviceSubscribe: (l) => subscribeTo(subscribeListeners, l),
    onDeviceConnect: (l) => subscribeTo(connectListeners, l),
    onDeviceDisconnect: (l) => subscribeTo(disconnectListeners, l),
  }
}

function subscribeTo<T>(set: Set<T>, listener: T): Unsubscribe {
  set.add(listener)
  return () => void set.delete(listener)
}

function describe(s: Session): DeviceConnection {
  return { deviceId: s.deviceId, serial: s.serial, tier: s.tier, group: s.group, remoteAddress: s.remoteAddress }
}
