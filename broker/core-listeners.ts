import type { Aedes, Client } from 'aedes'
import type { Logger } from 'pino'
import type { Clock } from '../certs/index.ts'
import type { BrokerStats } from './broker-stats.ts'
import type { ClaimSession, ClaimSessionRegistry } from './claim-sessions.ts'
import type { ClaimRequest, DeviceConnection, DevicePublish, DeviceSubscribe, RenewalRequest, Unsubscribe } from './create-mqtt-core.ts'
import type { ConnectionContext } from './hooks/hook-deps.ts'
import type { Session, SessionRegistry } from './sessions.ts'
import { claimRequestTopic, parseDeviceTopic, topicClassOf, type DeviceTopic } from './topics.ts'

export interface CoreListeners {
  onDevicePublish(listener: (message: DevicePublish) => void): Unsubscribe
  onDeviceSubscribe(listener: (subscription: DeviceSubscribe) => void): Unsubscribe
  onDeviceConnect(listener: (connection: DeviceConnection) => void): Unsubscribe
  onDeviceDisconnect(listener: (connection: DeviceConnection & { reason: string }) => void): Unsubscribe
  onClaimRequest(listener: (request: ClaimRequest) => void): Unsubscribe
  onRenewalRequest(listener: (request: RenewalRequest) => void): Unsubscribe
  /** The session with this id while it is the live one: not closed, not closing, not taken over. */
  liveSession(id: number): Session | ClaimSession | undefined
}

/**
 * The aedes events, turned into the core's listener API: device publishes / subscribes / connects /
 * disconnects, and the two kinds of enrollment requests (a claim session's request, a device's renewal
 * request). A listener that throws is logged and never reaches aedes. Claim sessions are not devices:
 * they reach only onClaimRequest.
 */
export function wireCoreListeners(
  aedes: Aedes,
  deps: {
    connections: WeakMap<Client, ConnectionContext>
    sessions: SessionRegistry
    claimSessions: ClaimSessionRegistry
    log: Logger
    stats: BrokerStats
    clock: Clock
  },
): CoreListeners {
  const { connections, log, stats } = deps
  const publishListeners = new Set<(m: DevicePublish) => void>()
  const subscribeListeners = new Set<(s: DeviceSubscribe) => void>()
  const connectListeners = new Set<(c: DeviceConnection) => void>()
  const disconnectListeners = new Set<(c: DeviceConnection & { reason: string }) => void>()
  const claimListeners = new Set<(r: ClaimRequest) => void>()
  const renewalListeners = new Set<(r: RenewalRequest) => void>()
  /** sessions that reached CONNACK 0, by id, until their connection closes */
  const byId = new Map<number, Session | ClaimSession>()
  const contextOf = (client: Client | null) => (client ? connections.get(client) : undefined)

  function track(session: Session | ClaimSession, client: Client): void {
    if (client.closed) return
    byId.set(session.id, session)
    client.conn.once('close', () => byId.delete(session.id))
  }

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
    const ctx = contextOf(client)
    if (ctx?.claim) {
      const c = ctx.claim
      stats.publishesIn.provisioning++
      if (packet.topic !== claimRequestTopic(c.nonce) || claimListeners.size === 0) return
      const request: ClaimRequest = {
        sessionId: c.id,
        claimId: c.claimId,
        claimSerial: c.serial,
        nonce: c.nonce,
        clientId: c.clientId,
        remoteAddress: c.remoteAddress,
        payload: payloadOf(packet),
      }
      return notify(claimListeners, request, 'claim-request')
    }
    const session = ctx?.session
    if (!session) return
    const parsed = topicOf(ctx, packet.topic)
    if (!parsed || parsed.deviceId !== session.deviceId) return
    stats.publishesIn[topicClassOf(parsed.kind)]++
    if (parsed.kind === 'renewal.request' && renewalListeners.size > 0) {
      const request: RenewalRequest = {
        sessionId: session.id,
        deviceId: session.deviceId,
        serial: session.serial,
        remoteAddress: session.remoteAddress,
        payload: payloadOf(packet),
      }
      notify(renewalListeners, request, 'renewal-request')
    }
    if (publishListeners.size === 0) return
    notify(
      publishListeners,
      {
        deviceId: session.deviceId,
        topic: packet.topic,
        kind: parsed.kind,
        subtopic: parsed.subtopic,
        payload: payloadOf(packet),
        qos: packet.qos,
        // a will is published when its connection closes, long after its last packet was read
        receivedAtMs: (client && !client.closed ? ctx?.packetAtMs : undefined) ?? deps.clock.now().getTime(),
      },
      'publish',
    )
  })
  aedes.on('subscribe', (subscriptions, client) => {
    const session = contextOf(client)?.session
    if (!session) return
    const filters = subscriptions.filter((s) => s.qos <= 2).map((s) => ({ topic: s.topic, qos: s.qos }))
    if (filters.length > 0) {
      notify(
        subscribeListeners,
        { deviceId: session.deviceId, sessionId: session.id, filters, certificate: certificateOf(session) },
        'subscribe',
      )
    }
  })
  aedes.on('clientReady', (client) => {
    const ctx = contextOf(client)
    const claim = ctx?.claim
    if (claim) {
      stats.accepted.claim++
      track(claim, client)
      log.info(
        { claimId: claim.claimId, clientId: claim.clientId, serial: claim.serial, remoteAddress: claim.remoteAddress },
        'claim session connected',
      )
      return
    }
    const session = ctx?.session
    if (!session) return
    stats.accepted.device++
    track(session, client)
    log.info({ deviceId: session.deviceId, serial: session.serial, remoteAddress: session.remoteAddress }, 'device connected')
    notify(connectListeners, describeSession(session), 'connect')
    // aedes restored a resumed session's subscriptions before clientReady, without a 'subscribe' event
    const subscriptions = (client as Client & { subscriptions?: Record<string, { qos: number }> }).subscriptions ?? {}
    const restored = Object.entries(subscriptions).map(([topic, sub]) => ({ topic, qos: sub.qos as 0 | 1 | 2 }))
    if (!client.clean && restored.length > 0) {
      notify(
        subscribeListeners,
        { deviceId: session.deviceId, sessionId: session.id, filters: restored, restored: true, certificate: certificateOf(session) },
        'subscribe',
      )
    }
  })
  aedes.on('clientDisconnect', (client) => {
    const ctx = contextOf(client)
    if (ctx?.claim) {
      const c = ctx.claim
      const reason = c.closedBy ?? 'client'
      log.info(
        { claimId: c.claimId, clientId: c.clientId, serial: c.serial, remoteAddress: c.remoteAddress, reason },
        'claim session disconnected',
      )
      return
    }
    const session = ctx?.session
    if (!session) return
    const reason = session.closedBy ?? 'client'
    log.info({ deviceId: session.deviceId, serial: session.serial, remoteAddress: session.remoteAddress, reason }, 'device disconnected')
    notify(disconnectListeners, { ...describeSession(session), reason }, 'disconnect')
  })

  return {
    onDevicePublish: (l) => subscribeTo(publishListeners, l),
    onDeviceSubscribe: (l) => subscribeTo(subscribeListeners, l),
    onDeviceConnect: (l) => subscribeTo(connectListeners, l),
    onDeviceDisconnect: (l) => subscribeTo(disconnectListeners, l),
    onClaimRequest: (l) => subscribeTo(claimListeners, l),
    onRenewalRequest: (l) => subscribeTo(renewalListeners, l),
    liveSession(id) {
      const s = byId.get(id)
      if (!s || s.client.closed || s.closedBy !== null) return undefined
      const current = 'claimId' in s ? deps.claimSessions.get(s.clientId) : deps.sessions.get(s.deviceId)
      return current === s ? s : undefined
    },
  }
}

/** aedes hands a packet's payload as a Buffer; a string (a will set by a hook) is converted. */
function payloadOf(packet: { payload: Buffer | string }): Buffer {
  return Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
}

/**
 * The connection's last topic, parsed once: a device publishes to the same few topics over and over, so
 * the publish path compares one string instead of splitting and checking the topic per message.
 */
function topicOf(ctx: ConnectionContext, topic: string): DeviceTopic | null {
  const last = ctx.lastTopic
  if (last !== undefined && last.topic === topic) return last.parsed
  const parsed = parseDeviceTopic(topic)
  ctx.lastTopic = { topic, parsed }
  return parsed
}

function subscribeTo<T>(set: Set<T>, listener: T): Unsubscribe {
  set.add(listener)
  return () => void set.delete(listener)
}

function certificateOf(s: Session): DeviceSubscribe['certificate'] {
  return { serial: s.serial, notBefore: s.notBefore, notAfter: s.notAfter }
}

export function describeSession(s: Session): DeviceConnection {
  return { deviceId: s.deviceId, sessionId: s.id, serial: s.serial, tier: s.tier, group: s.group, remoteAddress: s.remoteAddress }
}
