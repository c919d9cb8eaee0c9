import type { Client } from 'aedes'
import { clockMs } from '../certs/index.ts'
import { PacketRateLimited } from './errors.ts'
import type { FrameListener, FrameViolation } from './frame-size-guard.ts'
import { principalOf, throttlePrincipal, type HookDeps } from './hooks/hook-deps.ts'

/** MQTT packet types by number (the high nibble of the fixed header), for logs and audit details. */
const PACKET_TYPES = [
  'reserved',
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth',
]

/** MQTT packet types a client sends to acknowledge a QoS 1/2 message the broker delivered to it. */
const PUBACK = 4
const PUBREC = 5
const PUBCOMP = 7
/** at most this many acknowledgements owed to one connection (two per QoS 2 message, 65,535 packet ids) */
const MAX_ACK_CREDIT = 2 * 65_535

/** One connection's acknowledgements owed: what the broker delivered at QoS 1/2 and the client has not acked yet. */
export interface AckCredit {
  owed: number
}

export interface PacketBudget {
  /**
   * The frame listener of one connection (frame-size-guard.ts calls it per frame, before aedes parses
   * the frame): every packet after CONNECT takes a token from the bucket of the connection's principal,
   * except a PUBACK, PUBREC or PUBCOMP the broker is owed (`acks`, counted by `oweAcks`): those answer
   * what the broker chose to send, so a client reading a fleet's telemetry at QoS 1 (an app) is not cut
   * off for acknowledging it, while acknowledgements nobody asked for cost a token like any packet.
   */
  meter(clientOf: () => Client | undefined, acks: AckCredit): FrameListener
  /** Counts each QoS 1/2 message handed to the client (its deliverQoS) as one or two acknowledgements owed. */
  oweAcks(client: Client, acks: AckCredit): void
  /** Marks the session closed by the broker and audits `device.throttled` (at most once per interval). */
  overBudget(client: Client | undefined, violation: Extract<FrameViolation, { kind: 'over-budget' }>): void
}

/**
 * One budget for every packet type a device sends after CONNECT (PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP,
 * SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT): a token bucket per principal (limits.packetRate), keyed
 * like the PUBLISH budgets (principal.key: the device id, a claim session's key), so reconnecting does not
 * refill it. PUBLISH also keeps its own message and byte buckets (authorize-publish.ts).
 *
 * It counts at the frame header, before aedes buffers or handles the packet, so a flood of SUBSCRIBEs or
 * PINGREQs costs the broker a counter per packet, not a registry read or a write. Over budget => the
 * connection is closed (MQTT 3.1.1 has no way to refuse a packet), audited as `device.throttled` with
 * `limit: 'packets'`. Frames that arrive after CONNECT but before authentication has decided (aedes
 * queues at most its queueLimit of them) are charged together with the first frame after it.
 */
export function createPacketBudget(
  deps: Pick<HookDeps, 'connections' | 'packets' | 'throttle' | 'directory' | 'log' | 'stats' | 'clock'>,
): PacketBudget {
  const log = deps.log.child({ module: 'broker.authz' })
  const buckets = deps.packets
  // no Date per packet (systemClock.nowMs): this runs for every frame a device sends
  const nowMs = clockMs(deps.clock)

  return {
    meter(clientOf, acks) {
      let frames = 0
      let pending = 0
      return (packetType) => {
        if (frames++ === 0) return null // CONNECT: the connection limits and authentication cover it
        if ((packetType === PUBACK || packetType === PUBREC || packetType === PUBCOMP) && acks.owed > 0) {
          acks.owed--
          return null
        }
        const client = clientOf()
        const ctx = client ? deps.connections.get(client) : undefined
        const principal = principalOf(ctx)
        if (!ctx || !principal) {
          pending++
          return null
        }
        const n = pending + 1
        pending = 0
        // the packet's one clock read: the PUBLISH buckets and the publish listeners take it from the context
        const now = nowMs()
        ctx.packetAtMs = now
        return buckets.tryTake(principal.key, n, now) ? null : { kind: 'over-budget', packetType }
      }
    },
    oweAcks(client, acks) {
      const c = client as unknown as { deliverQoS: (packet: { qos?: number }, done: () => void) => void }
      const original = c.deliverQoS
      c.deliverQoS = (packet, done) => {
        // aedes' deliverQoS hands a QoS 0 message on to deliver0: nothing is owed for it
        if (packet.qos === 1 || packet.qos === 2) acks.owed = Math.min(MAX_ACK_CREDIT, acks.owed + packet.qos)
        original.call(client, packet, done)
      }
    },
    overBudget(client, violation) {
      const principal = client ? principalOf(deps.connections.get(client)) : null
      if (!principal) return
      const packetType = PACKET_TYPES[violation.packetType] ?? 'reserved'
      const { code } = new PacketRateLimited(principal.subject, packetType)
      throttlePrincipal(deps, log, principal, { limit: 'packets', bucket: buckets.optionsOf(principal.key), code, details: { packetType } })
    },
  }
}
