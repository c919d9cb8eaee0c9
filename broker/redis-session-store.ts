import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { EventThrottle } from '../certs/index.ts'
import { SessionFull } from './errors.ts'
import type { BrokerLimits } from './limits.ts'
import type { SessionStore } from './session-store.ts'

type ClientRef = { id: string }
type Packet = { messageId?: number; [field: string]: unknown }

/** The part of aedes-persistence-redis 12 (asyncPersistence.js) that this store wraps. */
interface RedisPersistence {
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void>
  incomingStorePacket(client: ClientRef, packet: Packet): Promise<void>
  cleanIncoming(client: ClientRef): Promise<void>
  cleanSubscriptions(client: ClientRef): Promise<void>
}

// aedes-persistence-redis 12's key layout (asyncPersistence.js): a client's outgoing list holds packet
// keys; each packet key has a count of the clients that still hold it.
const outgoingKey = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`
const incomingKey = (clientId: string) => `incoming:${encodeURIComponent(clientId)}`
// the list of every stored will's key, `will:<brokerId>:<clientId>`, whichever node stored it
const WILLS = 'will'

/**
 * Gatehouse's session bounds (session-store.ts) on the Redis persistence of a cluster, where the
 * queues live in Redis and move with a device between nodes:
 * - outgoing: at most limits.maxQueuedMessages per client; beyond it the OLDEST are dropped (LPOP, and
 *   the packet is freed once no client holds it), counted and logged at most once per interval per client;
 * - inbound QoS 2: at most limits.maxInflightInbound unreleased packets per client (HLEN), across
 *   reconnects and nodes; one more is refused with GH_BROKER_SESSION_FULL and aedes closes the connection.
 * - drop() (a revoked or disabled device): its subscriptions, queues and every stored will, whichever node
 *   stored it.
 * limits.maxQueuedBytes is not enforced here yet (each message is bounded by limits.maxPacketBytes);
 * the stats are this node's drops and refusals, and queuedMessages/queuedBytes are not counted (0).
 */
export function boundRedisSessionStore(
  persistence: object,
  redis: Redis,
  limits: Pick<BrokerLimits, 'maxQueuedMessages' | 'maxInflightInbound'>,
  deps: { log: Logger; throttle: EventThrottle },
): SessionStore {
  const p = persistence as RedisPersistence
  const totals = { queuedMessages: 0, queuedBytes: 0, droppedMessages: 0, refusedInbound: 0 }
  const enqueue = p.outgoingEnqueueCombi.bind(p)
  const storeIncoming = p.incomingStorePacket.bind(p)

  async function trim(clientId: string): Promise<void> {
    const key = outgoingKey(clientId)
    const over = (await redis.llen(key)) - limits.maxQueuedMessages
    if (over <= 0) return
    const dropped = (await redis.lpop(key, over)) ?? []
    for (const packetKey of dropped) {
      const countKey = `${packetKey}:offlineCount`
      if ((await redis.decr(countKey)) <= 0) await redis.del(packetKey, countKey)
    }
    totals.droppedMessages += dropped.length
    const hit = deps.throttle.hit(`session.queue-full:${clientId}`)
    if (hit.emit) {
      deps.log.warn(
        {
          clientId,
          dropped: dropped.length,
          suppressed: hit.suppressed,
          maxQueuedMessages: limits.maxQueuedMessages,
          code: 'GH_BROKER_SESSION_FULL',
        },
        'session queue full: dropped the oldest messages',
      )
    }
  }

  p.outgoingEnqueueCombi = async (subs, packet) => {
    await enqueue(subs, packet)
    for (const sub of subs) await trim(sub.clientId)
  }
  p.incomingStorePacket = async (client, packet) => {
    const key = incomingKey(client.id)
    const [[, size] = [null, 0], [, known] = [null, 0]] =
      (await redis.multi().hlen(key).hexists(key, String(packet.messageId)).exec()) ?? []
    if (Number(known) === 0 && Number(size) >= limits.maxInflightInbound) {
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
    await storeIncoming(client, packet)
  }

  /**
   * Every stored will of the client, whichever node stored it (a will is keyed by its node): a revoked
   * device's will must not go out when a node that held it dies later. One LRANGE of the wills list
   * (one entry per connected device with a will, cluster-wide) per drop.
   */
  async function dropWills(clientId: string): Promise<void> {
    const suffix = `:${encodeURIComponent(clientId)}`
    const keys = ((await redis.lrange(WILLS, 0, -1)) ?? []).filter((k) => k.startsWith('will:') && k.endsWith(suffix))
    for (const key of keys) await redis.multi().lrem(WILLS, 0, key).del(key).exec()
  }

  return {
    async drop(clientId) {
      await p.cleanSubscriptions({ id: clientId })
      await redis.del(outgoingKey(clientId))
      await p.cleanIncoming({ id: clientId })
      await dropWills(clientId)
    },
    stats: () => ({ ...totals }),
  }
}
