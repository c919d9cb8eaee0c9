import { Aedes, type Client } from 'aedes'
import { randomUUID } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { countBy, createBrokerStats, type BrokerStats } from './broker-stats.ts'
import { createClaimSessionRegistry } from './claim-sessions.ts'
import { createAppSessionRegistry } from './app-sessions.ts'
import { createClientLease } from './client-lease.ts'
import { CLUSTER_HEARTBEAT_MS, type ClusterBackend } from './cluster.ts'
import { clusterConnectRate } from './cluster-connect-rate.ts'
import { createSlowReaderBound } from './slow-reader-bound.ts'
import { holdUntilConnack } from './connack-first.ts'
import { describeSession, wireCoreListeners } from './core-listeners.ts'
import type { DeviceDirectory } from './device-directory.ts'
import { deviceBuckets, followDeviceLimits, type DeviceLimitsSource } from './device-limits.ts'
import { TopicNotDeviceBound } from './errors.ts'
import { capText, createEventThrottle, systemTimers, type Clock, type Timers } from '../certs/index.ts'
import { guardDirectory } from './guard-directory.ts'
import { guardFrameSize } from './frame-size-guard.ts'
import { type AckCredit, createPacketBudget } from './packet-budget.ts'
import { boundRedisSessionStore } from './redis-session-store.ts'
import { createAuthenticate } from './hooks/authenticate.ts'
import { createAuthorizePublish } from './hooks/authorize-publish.ts'
import { createAuthorizeSubscribe } from './hooks/authorize-subscribe.ts'
import { createAuthorizeForward } from './hooks/authorize-forward.ts'
import { BROKER_ACTOR, throttledAudit, type ConnectionContext, type HookDeps } from './hooks/hook-deps.ts'
import { createPreConnect } from './hooks/pre-connect.ts'
import type { BrokerLimits } from './limits.ts'
import { startSessionLifecycle } from './session-lifecycle.ts'
import { boundSessionStore, type SessionPersistence, type SessionStore, type SessionStoreStats } from './session-store.ts'
import { createSessionRegistry } from './sessions.ts'
import { createKeyedTokenBuckets } from './token-bucket.ts'
import {
  claimResponseTopic,
  isBrokerToDeviceKind,
  parseDeviceTopic,
  renewalResponseTopic,
  topicClassOf,
  type DeviceTopicKind,
} from './topics.ts'

export interface BrokerDeps {
  directory: DeviceDirectory
  log: Logger
  clock: Clock
  /** for the session sweep; default the real timers, unref'd (tests pass fake ones with the clock) */
  timers?: Timers
  /** per-device limits by tier and override (device-limits.ts), applied at CONNECT and live; absent: the global limits */
  limitsSource?: DeviceLimitsSource
  /** a node of a cluster (connectCluster, cluster.ts): fan-out, sessions, epochs and the connect rate in Redis */
  cluster?: ClusterBackend
}

/**
 * A device's accepted PUBLISH (telemetry, settings/reported, renewal/request), after authorization.
 * Listeners pick the kinds they handle (the AI bridge: telemetry; settings delivery: settings.reported).
 */
export interface DevicePublish {
  deviceId: string
  topic: string
  kind: DeviceTopicKind
  /** levels below devices/{id}/telemetry (shared by the messages of a topic: read it, do not change it) */
  subtopic: readonly string[]
  payload: Buffer
  qos: 0 | 1 | 2
  /** when the broker read the packet (ms, the broker's clock): one clock read per packet, for every listener */
  receivedAtMs: number
}

/**
 * A device's SUBSCRIBE, with the filters that were granted (refused ones left out). A device resuming a
 * persistent session (clean=false, session present) is reported once at connect with the subscriptions
 * the broker restored for it, marked `restored`.
 */
export interface DeviceSubscribe {
  deviceId: string
  /** the session (connection) that subscribed */
  sessionId: number
  filters: { topic: string; qos: 0 | 1 | 2 }[]
  restored?: true
  /** the certificate the session connected with */
  certificate: { serial: string; notBefore: Date; notAfter: Date }
}

export interface DeviceConnection {
  deviceId: string
  /** unique per connection within this broker */
  sessionId: number
  serial: string
  tier: string
  group: string | null
  remoteAddress: string | null
}

export interface PublishToDeviceOptions {
  qos?: 0 | 1 | 2
  retain?: boolean
}

/** A claim session's PUBLISH to its request topic, provisioning/<nonce>/request (raw payload). */
export interface ClaimRequest {
  /** the session that asked; answer it with replyToSession(sessionId, …) */
  sessionId: number
  claimId: string
  /** the claim certificate's serial */
  claimSerial: string
  nonce: string
  /** `claim:<nonce>` */
  clientId: string
  remoteAddress: string | null
  payload: Buffer
}

/** A device's PUBLISH to devices/<id>/renewal/request (raw payload), on the session's certificate. */
export interface RenewalRequest {
  sessionId: number
  deviceId: string
  /** the serial of the certificate the session connected with */
  serial: string
  remoteAddress: string | null
  payload: Buffer
}

export type Unsubscribe = () => void

/**
 * The MQTT data plane without sockets: aedes with the Gatehouse hooks, device sessions and claim
 * sessions (claim-sessions.ts), live revocation and the end-of-validity sweep (session-lifecycle.ts),
 * and the listener API that settings delivery, the AI bridge and enrollment (enrollment.ts) hook into
 * (core-listeners.ts). create-broker.ts puts a TLS listener in front; unit tests drive `handle()` over
 * in-memory duplex streams (docs/conventions.md §24).
 */
export interface MqttCore {
  readonly aedes: Aedes
  start(): Promise<void>
  /** Serves one connection (a TLSSocket in production): packet-size guard and packet budget, then aedes. */
  handle(conn: Duplex): Client
  close(): Promise<void>
  /** Devices with an authenticated session that is not closed (from the moment CONNACK 0 is decided). */
  connectedDeviceIds(): string[]
  isConnected(deviceId: string): boolean
  connection(deviceId: string): DeviceConnection | undefined
  /** Publishes to devices/{id}/settings, /insights or /renewal/response (bypasses device authorization). */
  publishToDevice(topic: string, payload: Buffer | Uint8Array | string, options?: PublishToDeviceOptions): Promise<void>
  /**
   * Publishes an answer, QoS 1 and never retained, to the response topic of session `sessionId`: a
   * claim session's provisioning/<nonce>/response, a device session's devices/<id>/renewal/response.
   * Only while that very session is the live one: resolves false, sending nothing, once it has closed,
   * is closing or was taken over.
   */
  replyToSession(sessionId: number, payload: Buffer | Uint8Array | string): Promise<boolean>
  /** Stored session state of all clients: queued messages and bytes, drops, refused inbound QoS 2. */
  sessionStats(): SessionStoreStats
  /** The broker's counters, live (broker-stats.ts); read them, do not change them. */
  stats(): Readonly<BrokerStats>
  /** True while session `sessionId` (device or claim) is open and not taken over. */
  isSessionLive(sessionId: number): boolean
  /** Closes a device's live session (audited as session.closed); false when it was not connected. */
  disconnectDevice(deviceId: string, reason: string): boolean
  onDevicePublish(listener: (message: DevicePublish) => void): Unsubscribe
  onDeviceSubscribe(listener: (subscription: DeviceSubscribe) => void): Unsubscribe
  onDeviceConnect(listener: (connection: DeviceConnection) => void): Unsubscribe
  onDeviceDisconnect(listener: (connection: DeviceConnection & { reason: string }) => void): Unsubscribe
  /** Claim sessions' requests (broker/enrollment.ts answers them). */
  onClaimRequest(listener: (request: ClaimRequest) => void): Unsubscribe
  /** Devices' renewal requests (also reported to onDevicePublish as kind 'renewal.request'). */
  onRenewalRequest(listener: (request: RenewalRequest) => void): Unsubscribe
}

export function createMqttCore(brokerDeps: BrokerDeps, limits: Readonly<BrokerLimits>, stats: BrokerStats = createBrokerStats()): MqttCore {
  const log = brokerDeps.log.child({ module: 'broker.sessions' })
  const deps: BrokerDeps = { ...brokerDeps, directory: guardDirectory(brokerDeps.directory, log) }
  let closed = false
  let lastSessionId = 0
  const sessions = createSessionRegistry()
  const claimSessions = createClaimSessionRegistry()
  const appSessions = createAppSessionRegistry()
  const connections = new WeakMap<Client, ConnectionContext>()
  const throttle = createEventThrottle({ intervalMs: limits.auditIntervalMs, maxKeys: limits.maxTrackedKeys }, deps.clock)

  // aedes' id for this node (as its default, a random UUID): a will stored by another node carries that node's id
  const nodeId = randomUUID()
  const hookDeps: HookDeps = {
    ...deps,
    limits,
    sessions,
    claimSessions,
    appSessions,
    nextSessionId: () => ++lastSessionId,
    connections,
    throttle,
    stats,
    connectAttempts: deps.cluster
      ? clusterConnectRate(deps.cluster.redis, limits.connectRatePerClientId)
      : createKeyedTokenBuckets({ ...limits.connectRatePerClientId, maxKeys: limits.maxTrackedKeys }, deps.clock),
    ...(deps.cluster && { orphanWills: { nodeId } }),
    publishMessages: createKeyedTokenBuckets({ ...limits.publishRate, maxKeys: limits.maxTrackedKeys }, deps.clock),
    publishBytes: createKeyedTokenBuckets({ ...limits.publishBytesRate, maxKeys: limits.maxTrackedKeys }, deps.clock),
    packets: createKeyedTokenBuckets({ ...limits.packetRate, maxKeys: limits.maxTrackedKeys }, deps.clock),
    ...(deps.limitsSource && { limitsSource: deps.limitsSource }),
  }

  const packetBudget = createPacketBudget(hookDeps)

  const aedes = new Aedes({
    id: nodeId,
    preConnect: createPreConnect(hookDeps),
    authenticate: createAuthenticate(hookDeps),
    authorizePublish: createAuthorizePublish(hookDeps),
    authorizeSubscribe: createAuthorizeSubscribe(hookDeps),
    authorizeForward: createAuthorizeForward(hookDeps),
    connectTimeout: limits.connectTimeoutMs,
    drainTimeout: limits.drainTimeoutMs,
    // keepalive is clamped to its bounds in preConnect (aedes' keepaliveLimit answers CONNACK 6, which
    // MQTT 3.1.1 does not define), and MQTT 3.1 clients may use device ids up to 64 characters.
    keepaliveLimit: 0,
    maxClientsIdLength: 64,
    maxInflightInbound: limits.maxInflightInbound,
    ...(deps.cluster && { mq: deps.cluster.mq, persistence: deps.cluster.persistence, heartbeatInterval: CLUSTER_HEARTBEAT_MS }),
  })
  if (deps.cluster) {
    // a local session closed because a newer connection of its clientId won on another node: a takeover (no will)
    hookDeps.lease = createClientLease(deps.cluster.mq as never, deps.cluster.redis, aedes, {
      log,
      onStale: (client) => {
        const session = connections.get(client)?.session
        if (session) session.closedBy ??= 'takeover'
      },
    })
  }
  const holdDeliveries = holdUntilConnack(aedes, limits.maxQueuedMessages, (client) => client.close())
  // a client that stops reading holds its queue bound and slows nobody (slow-reader-bound.ts)
  const slowReaders = createSlowReaderBound(limits, { log, throttle })
  // Bounded outgoing queues and inbound QoS 2 per client (session-store.ts); revoking or disabling a
  // device drops its stored session (subscriptions, queue, inbound QoS 2, will).
  // aedes creates its persistence in listen(): start() bounds it before the first connection.
  let sessionStore: SessionStore | null = null
  const dropStoredSession = (deviceId: string) => {
    sessionStore?.drop(deviceId).catch((err: unknown) => log.warn({ err, deviceId }, 'dropping the stored session failed'))
  }

  const listeners = wireCoreListeners(aedes, { connections, sessions, claimSessions, log, stats, clock: deps.clock })
  const sessionOf = (client: Client | null) => (client ? (connections.get(client)?.session ?? undefined) : undefined)
  aedes.on('clientError', (client, err) => {
    log.debug({ deviceId: sessionOf(client)?.deviceId ?? null, clientId: capText(String(client.id)), err }, 'client error')
  })
  aedes.on('connectionError', (client, err) => {
    log.debug({ clientId: capText(String(client.id)), err }, 'connection error')
  })
  ;(aedes as EventEmitter).on('error', (err: unknown) => log.error({ err }, 'aedes error'))

  // Live revocation, claim revocation and the end-of-validity sweep (session-lifecycle.ts).
  const lifecycle = startSessionLifecycle({
    directory: deps.directory,
    sessions,
    claimSessions,
    appSessions,
    clock: deps.clock,
    timers: deps.timers ?? systemTimers,
    log,
    limits,
    onDeviceEnded: dropStoredSession,
  })
  const stopLimits = deps.limitsSource
    ? followDeviceLimits({ source: deps.limitsSource, events: deps.directory, sessions, buckets: deviceBuckets(hookDeps), limits, log })
    : () => {}
  aedes.on('clientReady', (client) => {
    const claim = connections.get(client)?.claim
    if (claim) lifecycle.watchClaimSession(claim)
  })

  async function publish(topic: string, payload: Buffer | Uint8Array | string, qos: 0 | 1 | 2, retain: boolean): Promise<void> {
    const packet = {
      cmd: 'publish' as const,
      topic,
      payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
      qos,
      retain,
      dup: false,
    }
    await new Promise<void>((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())))
  }

  return {
    aedes,
    async start() {
      await aedes.listen()
      const persistence = (aedes as unknown as { persistence: SessionPersistence }).persistence
      sessionStore = deps.cluster
        ? boundRedisSessionStore(persistence, deps.cluster.redis, limits, { log, throttle, directory: deps.directory })
        : boundSessionStore(persistence, limits, { log, throttle })
    },
    handle(conn) {
      let handled: Client | undefined
      const acks: AckCredit = { owed: 0 }
      guardFrameSize(
        conn,
        limits.maxPacketBytes,
        (violation) => {
          if (violation.kind === 'over-budget') {
            packetBudget.overBudget(handled, violation)
            conn.destroy()
            return
          }
          const client = (conn as Duplex & { client?: Client }).client ?? null
          const session = sessionOf(client)
          const remoteAddress = (conn as { remoteAddress?: string }).remoteAddress ?? null
          const declaredBytes = violation.kind === 'too-large' ? violation.declaredBytes : null
          if (declaredBytes !== null) countBy(stats.limitHits, 'packet-size')
          const fields = {
            deviceId: session?.deviceId ?? null,
            remoteAddress,
            declaredBytes,
            maxPacketBytes: limits.maxPacketBytes,
            code: 'GH_BROKER_PACKET_TOO_LARGE',
          }
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
            const claim = client ? connections.get(client)?.claim : undefined
            if (claim) claim.closedBy = violation.kind === 'too-large' ? 'packet-too-large' : 'malformed-packet'
            const hit = throttle.hit(`packet.too-large:${remoteAddress}`)
            if (hit.emit) log.info({ ...fields, suppressed: hit.suppressed }, 'packet too large')
          }
          conn.destroy()
        },
        packetBudget.meter(() => handled, acks),
      )
      handled = aedes.handle(conn)
      // innermost of the deliverQoS wrappers: owed only for what is actually handed to aedes to write
      packetBudget.oweAcks(handled, acks)
      holdDeliveries(handled)
      slowReaders.bound(handled)
      return handled
    },
    async close() {
      if (closed) return
      closed = true
      lifecycle.stop()
      stopLimits()
      // The broker is going away, not the devices: no wills on shutdown.
      for (const session of sessions.all()) session.closedBy ??= 'shutdown'
      for (const session of claimSessions.all()) session.closedBy ??= 'shutdown'
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
      return s && !s.client.closed ? describeSession(s) : undefined
    },
    async publishToDevice(topic, payload, options = {}) {
      const parsed = parseDeviceTopic(topic)
      if (!parsed || !isBrokerToDeviceKind(parsed.kind)) throw new TopicNotDeviceBound(topic)
      await publish(topic, payload, options.qos ?? 1, options.retain ?? false)
      stats.messagesOut[topicClassOf(parsed.kind)]++
    },
    async replyToSession(sessionId, payload) {
      const s = listeners.liveSession(sessionId)
      if (!s) return false
      const claim = 'claimId' in s
      await publish(claim ? claimResponseTopic(s.nonce) : renewalResponseTopic(s.deviceId), payload, 1, false)
      stats.messagesOut[claim ? 'provisioning' : 'renewal']++
      return true
    },
    sessionStats() {
      const stored = sessionStore?.stats() ?? { queuedMessages: 0, queuedBytes: 0, droppedMessages: 0, refusedInbound: 0 }
      return { ...stored, droppedMessages: stored.droppedMessages + slowReaders.dropped() }
    },
    stats: () => stats,
    isSessionLive: (sessionId) => listeners.liveSession(sessionId) !== undefined,
    disconnectDevice(deviceId, reason) {
      const s = sessions.get(deviceId)
      if (!s || s.client.closed) return false
      lifecycle.closeSession(s, reason)
      return true
    },
    onDevicePublish: listeners.onDevicePublish,
    onDeviceSubscribe: listeners.onDeviceSubscribe,
    onDeviceConnect: listeners.onDeviceConnect,
    onDeviceDisconnect: listeners.onDeviceDisconnect,
    onClaimRequest: listeners.onClaimRequest,
    onRenewalRequest: listeners.onRenewalRequest,
  }
}
