import type { Logger } from 'pino'
import { Readable } from 'node:stream'
import { BrokerOptionInvalid, SessionFull } from './errors.ts'
import type { EventThrottle } from '../certs/index.ts'
import type { BrokerLimits } from './limits.ts'

/** The packet fields aedes keeps in its persistence (aedes-packet), as far as this store reads them. */
interface StoredPacket {
  cmd?: string
  topic?: string
  payload?: Buffer | Uint8Array | string
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  [field: string]: unknown
}

type ClientRef = { id: string }

/** The part of aedes' persistence (aedes-persistence 11, promise style) that this store replaces. */
export interface SessionPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void>
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void>
  outgoingUpdate(client: ClientRef, packet: StoredPacket): Promise<void>
  outgoingClearMessageId(client: ClientRef, packet: StoredPacket): Promise<StoredPacket | undefined>
  outgoingStream(client: ClientRef): Readable
  incomingStorePacket(client: ClientRef, packet: StoredPacket): Promise<void>
  incomingGetPacket(client: ClientRef, packet: StoredPacket): Promise<StoredPacket>
  incomingDelPacket(client: ClientRef, packet: StoredPacket): Promise<void>
  cleanIncoming(client: ClientRef): Promise<void>
  cleanSubscriptions(client: ClientRef): Promise<void>
  delWill(client: ClientRef): Promise<unknown>
}

export interface SessionStoreStats {
  /** stored outgoing QoS 1/2 messages (in flight or queued for offline devices), all clients */
  queuedMessages: number
  queuedBytes: number
  /**
   * messages dropped because a client's queue was full, since start: the oldest of a stored queue, and
   * (counted by create-mqtt-core.ts) the newest for a connected client that is not reading (slow-reader-bound.ts)
   */
  droppedMessages: number
  /** inbound QoS 2 packets refused because a client already had limits.maxInflightInbound unreleased */
  refusedInbound: number
}

export interface SessionStore {
  /** Forgets everything stored for a client: subscriptions, outgoing queue, inbound QoS 2, will. */
  drop(clientId: string): Promise<void>
  stats(): SessionStoreStats
}

const REPLACED = [
  'outgoingEnqueue',
  'outgoingEnqueueCombi',
  'outgoingUpdate',
  'outgoingClearMessageId',
  'outgoingStream',
  'incomingStorePacket',
  'incomingGetPacket',
  'incomingDelPacket',
  'cleanIncoming',
  'cleanSubscriptions',
  'delWill',
] as const

interface Queue {
  packets: StoredPacket[]
  bytes: number
}

/**
 * Bounded session state. aedes' memory persistence keeps, per client and without any limit, every
 * outgoing QoS 1/2 message until it is acknowledged (the in-flight ones and, for a clean=false device,
 * everything queued while it is offline; replayed on reconnect) and every inbound QoS 2 packet until
 * its PUBREL (kept across reconnects of a persistent session). This replaces those parts of the
 * persistence instance aedes created, in place (the same methods, same semantics as
 * aedes-persistence's MemoryPersistence), with per-client bounds:
 * - outgoing: at most limits.maxQueuedMessages messages and limits.maxQueuedBytes payload bytes per
 *   client; a new message beyond them drops the OLDEST (counted in stats, logged at most once per
 *   interval per client with the number dropped);
 * - inbound QoS 2: at most limits.maxInflightInbound unreleased packets per client, across reconnects;
 *   one more is refused and aedes closes the connection (as it does for its own per-connection bound).
 * Subscriptions, retained messages and wills stay in the inner persistence (a device's subscriptions
 * are bounded by its topic grants).
 */
export function boundSessionStore(
  persistence: SessionPersistence,
  limits: Pick<BrokerLimits, 'maxQueuedMessages' | 'maxQueuedBytes' | 'maxInflightInbound'>,
  deps: { log: Logger; throttle: EventThrottle },
): SessionStore {
  for (const method of REPLACED) {
    // fails loudly (at start) if a future aedes-persistence renames what this store replaces
    if (typeof persistence[method] !== 'function') throw new BrokerOptionInvalid('persistence', `aedes persistence has no ${method}()`)
  }
  const outgoing = new Map<string, Queue>()
  const incoming = new Map<string, Map<number, StoredPacket>>()
  const totals = { queuedMessages: 0, queuedBytes: 0, droppedMessages: 0, refusedInbound: 0 }

  const queueOf = (clientId: string): Queue => {
    let q = outgoing.get(clientId)
    if (!q) {
      q = { packets: [], bytes: 0 }
      outgoing.set(clientId, q)
    }
    return q
  }
  const remove = (q: Queue, index: number): StoredPacket => {
    const [p] = q.packets.splice(index, 1) as [StoredPacket]
    q.bytes -= sizeOf(p)
    totals.queuedMessages--
    totals.queuedBytes -= sizeOf(p)
    return p
  }

  function enqueue(clientId: string, packet: StoredPacket): void {
    const q = queueOf(clientId)
    const copy = snapshot(packet)
    const size = sizeOf(copy)
    let dropped = 0
    while (q.packets.length > 0 && (q.packets.length >= limits.maxQueuedMessages || q.bytes + size > limits.maxQueuedBytes)) {
      remove(q, 0)
      dropped++
    }
    q.packets.push(copy)
    q.bytes += size
    totals.queuedMessages++
    totals.queuedBytes += size
    if (dropped === 0) return
    totals.droppedMessages += dropped
    const hit = deps.throttle.hit(`session.queue-full:${clientId}`)
    if (hit.emit) {
      deps.log.warn(
        {
          clientId,
          dropped,
          suppressed: hit.suppressed,
          maxQueuedMessages: limits.maxQueuedMessages,
          maxQueuedBytes: limits.maxQueuedBytes,
          code: 'GH_BROKER_SESSION_FULL',
        },
        'session queue full: dropped the oldest messages',
      )
    }
  }

  const p = persistence
  p.outgoingEnqueue = async (sub, packet) => enqueue(sub.clientId, packet)
  p.outgoingEnqueueCombi = async (subs, packet) => {
    for (const sub of subs) enqueue(sub.clientId, packet)
  }
  p.outgoingUpdate = async (client, packet) => {
    const q = outgoing.get(client.id) ?? { packets: [], bytes: 0 }
    for (let i = 0; i < q.packets.length; i++) {
      const stored = q.packets[i] as StoredPacket
      if (stored.brokerId === packet.brokerId) {
        // messageIds wrap at 65535: brokerCounter tells which stored packet this is
        if (stored.brokerCounter === packet.brokerCounter) {
          stored.messageId = packet.messageId
          return
        }
      } else if (stored.messageId === packet.messageId) {
        q.bytes += sizeOf(packet) - sizeOf(stored)
        totals.queuedBytes += sizeOf(packet) - sizeOf(stored)
        q.packets[i] = packet
        return
      }
    }
    // dropped as the oldest meanwhile: aedes then drops the delivery too
    throw new Error('no such packet')
  }
  p.outgoingClearMessageId = async (client, packet) => {
    const q = outgoing.get(client.id)
    if (!q) return undefined
    const index = q.packets.findIndex((stored) => stored.messageId === packet.messageId)
    const removed = index < 0 ? undefined : remove(q, index)
    if (q.packets.length === 0) outgoing.delete(client.id)
    return removed
  }
  p.outgoingStream = (client) => Readable.from([...(outgoing.get(client.id)?.packets ?? [])])

  p.incomingStorePacket = async (client, packet) => {
    let store = incoming.get(client.id)
    if (!store) {
      store = new Map()
      incoming.set(client.id, store)
    }
    const messageId = packet.messageId as number
    if (!store.has(messageId) && store.size >= limits.maxInflightInbound) {
      totals.refusedInbound++
      const err = new SessionFull(client.id, `${limits.maxInflightInbound} inbound QoS 2 messages await PUBREL`)
      const hit = deps.throttle.hit(`session.inbound-full:${client.id}`)
      if (hit.emit) {
        deps.log.info(
          { clientId: client.id, maxInflightInbound: limits.maxInflightInbound, suppressed: hit.suppressed, code: err.code },
          'inbound QoS 2 limit reached: connection closed',
        )
      }
      throw err
    }
    store.set(messageId, { ...snapshot(packet), messageId })
  }
  p.incomingGetPacket = async (client, packet) => {
    const stored = incoming.get(client.id)?.get(packet.messageId as number)
    if (!stored) throw new Error('no such packet')
    return stored
  }
  p.incomingDelPacket = async (client, packet) => {
    const store = incoming.get(client.id)
    if (!store?.delete(packet.messageId as number)) throw new Error('no such packet')
    if (store.size === 0) incoming.delete(client.id)
  }
  p.cleanIncoming = async (client) => void incoming.delete(client.id)

  return {
    async drop(clientId) {
      const q = outgoing.get(clientId)
      if (q) {
        totals.queuedMessages -= q.packets.length
        totals.queuedBytes -= q.bytes
        outgoing.delete(clientId)
      }
      incoming.delete(clientId)
      await p.cleanSubscriptions({ id: clientId })
      await p.delWill({ id: clientId })
    },
    stats: () => ({ ...totals }),
  }
}

function sizeOf(packet: StoredPacket): number {
  const payload = packet.payload
  return (typeof payload === 'string' ? Buffer.byteLength(payload) : (payload?.length ?? 0)) + Buffer.byteLength(packet.topic ?? '')
}

/**
 * What aedes-packet's constructor keeps of a packet (the memory persistence stores `new Packet(packet)`):
 * a copy that aedes' later changes to the delivered packet do not reach, without the publisher's
 * messageId (the receiver's is assigned at delivery and set by outgoingUpdate).
 */
function snapshot(packet: StoredPacket): StoredPacket {
  const copy: StoredPacket = {
    cmd: packet.cmd ?? 'publish',
    brokerId: packet.brokerId,
    brokerCounter: packet.brokerCounter ?? 0,
    topic: packet.topic,
    payload: packet.payload ?? Buffer.alloc(0),
    qos: packet.qos ?? 0,
    retain: packet.retain ?? false,
    dup: packet.dup ?? false,
  }
  for (const field of ['clientId', 'nl', 'properties', 'messageExpiry']) if (Object.hasOwn(packet, field)) copy[field] = packet[field]
  if (copy.qos === 0 && copy.cmd === 'publish') return copy
  copy.messageId = undefined
  return copy
}
