import { capText } from '../../certs/index.ts'
import { PublishRateLimited, PublishRefused } from '../errors.ts'
import { canPublish, canPublishTo } from '../topic-policy.ts'
import {
  BROKER_ACTOR,
  principalOf,
  throttledAudit,
  throttlePrincipal,
  type AuthorizePublishHandler,
  type HookDeps,
  type Principal,
} from './hook-deps.ts'

/**
 * Authorization of device PUBLISH packets (and of a device's will, when aedes publishes it).
 *
 * Refused publish => disconnect. MQTT 3.1.1 cannot tell a client that a PUBLISH was refused
 * ([MQTT-3.3.5-2]: acknowledge it as if delivered, or close the connection), and aedes 1.2 closes the
 * connection when this hook returns an error; it has no "acknowledge and drop". Closing is also the
 * honest answer: a device publishing outside devices/{self}/... is misconfigured or compromised, and a
 * silent drop would hide that from its operator. Refusals are audited as `publish.refused` at most once
 * per minute per device (limits.auditIntervalMs), with the number suppressed since the last one.
 *
 * Retain: cleared on every device publish (not refused). Devices may not subscribe to the topics they
 * publish to, so a retained copy would have no reader, and it would let each device park a message per
 * telemetry subtopic in broker memory. The payload is still delivered.
 *
 * Claim sessions follow the same rules with their own grants (their request topic only); they are
 * audited under `claim:<claimId>`, with the clientId in the details.
 *
 * Per-device limits: a message bucket and a byte bucket (topic + payload) keyed by device id (for a
 * claim session, its claim and remote address, never its nonce), so that reconnecting does not refill them. Over either => disconnect,
 * audited as `device.throttled` at most once per interval per device (one record per throttling
 * episode under steady abuse).
 */
export function createAuthorizePublish(deps: HookDeps): AuthorizePublishHandler {
  const log = deps.log.child({ module: 'broker.authz' })

  return (client, packet, callback) => {
    // aedes publishes the wills of clients of a broker that died, with client === null, or with the client
    // of that clientId when it is connected to this node by then (aedes' _clearWills: that.clients[id]): in
    // a cluster, the will of a device whose node died (authenticate checked it against the device's grants
    // when it was stored; checked again here). Judged as the will it is, not as a PUBLISH of the new
    // connection: a device that came back here at once (it reconnects as soon as its node dies) must not
    // get its old will refused for its new session's state or budgets, which held it back a round and more.
    // A stored will carries the id of the node that stored it; a device's own PUBLISH never has one.
    if (deps.orphanWills && isOrphanWill(packet, deps.orphanWills.nodeId) && isOrphanWillAllowed(packet)) {
      packet.retain = false
      return callback(null)
    }
    const ctx = client ? deps.connections.get(client) : undefined
    const principal = principalOf(ctx)
    if (!client || !ctx || !principal) return callback(new PublishRefused(capText(packet.topic), 'not-authenticated'))
    const { session, subject, key, fields } = principal

    const decision = canPublishTo(session.grants, packet.topic)
    if (client.closed) {
      // The will of a closing client. A session the broker closed (revoked, throttled, refused publish)
      // gets no last word.
      if (!decision.ok || session.closedBy !== null) {
        return callback(new PublishRefused(capText(packet.topic), decision.ok ? 'session-closed' : decision.reason))
      }
      packet.retain = false
      return callback(null)
    }

    if (!decision.ok) {
      session.closedBy = 'publish-refused'
      throttledAudit(
        deps,
        log,
        `publish.refused:${subject}`,
        {
          actor: BROKER_ACTOR,
          action: 'publish.refused',
          subject,
          details: {
            topic: packet.topic,
            reason: decision.reason,
            serial: session.serial,
            remoteAddress: session.remoteAddress,
            ...claimDetails(fields),
          },
        },
        {
          ...fields,
          serial: session.serial,
          remoteAddress: session.remoteAddress,
          topic: packet.topic,
          reason: decision.reason,
          code: 'GH_BROKER_PUBLISH_REFUSED',
        },
        'publish refused',
      )
      return callback(new PublishRefused(capText(packet.topic), decision.reason))
    }

    const bytes = Buffer.byteLength(packet.topic) + (packet.payload?.length ?? 0)
    // the packet budget's clock read of this packet (one per packet), for both buckets
    const now = ctx.packetAtMs ?? deps.clock.now().getTime()
    const over = !deps.publishMessages.tryTake(key, 1, now) ? 'messages' : !deps.publishBytes.tryTake(key, bytes, now) ? 'bytes' : null
    if (over !== null) {
      const bucket = (over === 'messages' ? deps.publishMessages : deps.publishBytes).optionsOf(key)
      throttlePrincipal(deps, log, principal, { limit: over, bucket, code: 'GH_BROKER_PUBLISH_RATE_LIMITED' })
      return callback(new PublishRateLimited(key, over))
    }

    packet.retain = false
    callback(null)
  }
}

/** A claim session's clientId goes into its audit details (the subject names only the claim). */
function claimDetails(fields: Principal['fields']): Record<string, unknown> {
  return 'clientId' in fields ? { clientId: fields.clientId } : {}
}

/** A will another node stored (aedes-persistence-redis stores its brokerId and clientId in it). */
function isOrphanWill(packet: object, nodeId: string): boolean {
  const brokerId = (packet as { brokerId?: unknown }).brokerId
  return typeof brokerId === 'string' && brokerId !== nodeId
}

/** A dead node's will: only to the device's own topics. */
function isOrphanWillAllowed(packet: { topic: string; clientId?: unknown }): boolean {
  return typeof packet.clientId === 'string' && canPublish(packet.clientId, packet.topic).ok
}
