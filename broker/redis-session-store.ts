import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { EventThrottle } from '../certs/index.ts'
import type { DeviceDirectory } from './device-directory.ts'
import { SessionFull } from './errors.ts'
import type { BrokerLimits } from './limits.ts'
import type { SessionStore } from './session-store.ts'
import { canPublish } from './topic-policy.ts'

type ClientRef = { id: string }
type Packet = { messageId?: number; [field: string]: unknown }
/** a stored will as aedes-persistence-redis returns it: the packet with the node and client that stored it */
type StoredWill = { topic: string; clientId: string; brokerId: string; [field: string]: unknown }

/** The part of aedes-persistence-redis 12 (asyncPersistence.js) that this store wraps. */
interface RedisPersistence {
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void>
  incomingStorePacket(client: ClientRef, packet: Packet): Promise<void>
  cleanIncoming(client: ClientRef): Promise<void>
  cleanSubscriptions(client: ClientRef): Promise<void>
  streamWill(brokers: Record<string, number>): AsyncIterable<StoredWill>
  delWill(client: { id: string; brokerId: string }): Promise<unknown>
}

// aedes-persistence-redis 12's key layout (asyncPersistence.js): a client's outgoing list holds packet
// keys; each packet key has a count of the clients that still hold it.
const outgoingKey = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`
const incomingKey = (clientId: string) => `incoming:${encodeURIComponent(clientId)}`
// the list of every stored will's key, `will:<brokerId>:<clientId>`, whichever node stored it
const WILLS = 'will'

/**
 * Trims a client's outgoing list (KEYS[1]) to ARGV[1] messages and ARGV[2] stored bytes, oldest first,
 * never dropping the newest; a dropped packet is deleted once its count of holders reaches 0. Returns
 * how many were dropped. It reads the packet keys named in the list (not in KEYS): one Redis server,
 * as the cluster uses, not a Redis Cluster.
 */
const TRIM_SCRIPT = `
local keys = redis.call('LRANGE', KEYS[1], 0, -1)
local maxMessages, maxBytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local count, bytes = #keys, 0
for _, k in ipairs(keys) do bytes = bytes + redis.call('STRLEN', k) end
local dropped = 0
while count > 1 and (count > maxMessages or bytes > maxBytes) do
  local k = redis.call('LPOP', KEYS[1])
  bytes = bytes - redis.call('STRLEN', k)
  count = count - 1
  dropped = dropped + 1
  if redis.call('DECR', k .. ':offlineCount') <= 0 then redis.call('DEL', k, k .. ':offlineCount') end
end
return dropped
`

/**
 * Gatehouse's session bounds (session-store.ts) on the Redis persistence of a cluster, where the
 * queues live in Redis and move with a device between nodes:
 * - outgoing: at most limits.maxQueuedMessages messages and limits.maxQueuedBytes bytes per client; beyond
 *   either the OLDEST are dropped (and a packet is freed once no client holds it), counted and logged at
 *   most once per interval per client. One Lua script per enqueue and client does the count, the sum and
 *   the drops atomically (nodes enqueue for the same client at once). The bytes are the packets as stored
 *   in Redis (aedes-persistence-redis' msgpack of topic, payload and the packet's fields: about 100 bytes
 *   more per message than the topic + payload counted in memory); the newest message is always kept;
 * - inbound QoS 2: at most limits.maxInflightInbound unreleased packets per client (HLEN), across
 *   reconnects and nodes; one more is refused with GH_BROKER_SESSION_FULL and aedes closes the connection.
 * - drop() (a revoked or disabled device): its subscriptions, queues and every stored will, whichever node
 *   stored it.
 * - the wills of a dead node (aedes' streamWill, which every node reads every 4 heartbeats): each is
 *   claimed by one node (LREM of its entry in the wills list: aedes takes no lock, and two nodes published
 *   the same will) and checked against the registry (directory.lookupDeviceById) and the device's topics; the will of a device
 *   revoked, disabled or deleted since it was stored (while its node was down or cut off: no drop() reached
 *   it) is deleted, logged and never published. Skipping it here rather than refusing it in authorizePublish
 *   matters: aedes stops its whole round of wills at the first refusal and retries it every round, so one
 *   refused will would hold back every other dead device's will.
 * The stats are this node's drops and refusals, and queuedMessages/queuedBytes are not counted (0).
 */
export function boundRedisSessionStore(
  persistence: object,
  redis: Redis,
  limits: Pick<BrokerLimits, 'maxQueuedMessages' | 'maxQueuedBytes' | 'maxInflightInbound'>,
  deps: { log: Logger; throttle: EventThrottle; directory: Pick<DeviceDirectory, 'lookupDeviceById'> },
): SessionStore {
  const p = persistence as RedisPersistence
  const totals = { queuedMessages: 0, queuedBytes: 0, droppedMessages: 0, refusedInbound: 0 }
  const enqueue = p.outgoingEnqueueCombi.bind(p)
  const storeIncoming = p.incomingStorePacket.bind(p)
  const streamWill = p.streamWill.bind(p)

  async function trim(clientId: string): Promise<void> {
    const dropped = Number(await redis.eval(TRIM_SCRIPT, 1, outgoingKey(clientId), limits.maxQueuedMessages, limits.maxQueuedBytes))
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

  p.streamWill = async function* (brokers) {
    for await (const will of streamWill(brokers)) {
      // every node reads the same list each round and aedes takes no lock: the node whose LREM removes
      // the will's entry publishes it, the others skip it (without this two nodes sent the same will)
      const claimed = await redis.lrem(WILLS, 0, `will:${will.brokerId}:${encodeURIComponent(will.clientId)}`)
      if (claimed === 0) continue
      const answer = await deps.directory.lookupDeviceById(will.clientId)
      const reason = answer.kind === 'refused' ? answer.reason : canPublish(will.clientId, will.topic).ok ? null : 'topic-not-permitted'
      if (reason === null) {
        yield will
        continue
      }
      await p.delWill({ id: will.clientId, brokerId: will.brokerId })
      deps.log.info(
        { deviceId: will.clientId, brokerId: will.brokerId, reason, code: 'GH_BROKER_PUBLISH_REFUSED' },
        "a dead node's will dropped: the device may not publish it now",
      )
    }
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
