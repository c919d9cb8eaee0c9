import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { ClusterUnreachable } from './errors.ts'
import type { ClusterOptions } from './options.ts'

/**
 * The Redis persistence for aedes, loaded by the first cluster connect: ioredis, mqemitter-redis (with
 * msgpack-lite) and aedes-persistence-redis are ~120 modules and ~23 MiB of a process's RSS, which a broker
 * on one node never uses (issue 14: idle RSS). aedes-persistence-redis 12 ships no types; its main export
 * wraps this class in callbacks, and aedes 1.2 wants the async one (its setup() must be an async function).
 *
 * aedes 1.2 pipes what createRetainedStreamCombi returns (handlers/subscribe.js: `stream.pipe(...)`), as
 * its own in-memory persistence returns a Readable; aedes-persistence-redis 12 returns an async generator,
 * so every SUBSCRIBE on a node threw "stream.pipe is not a function" from a timer. Readable.from bridges
 * the two (the upstream report: docs/upstream/aedes-persistence-redis-retained-stream.md).
 */
function redisPersistence(conn: Redis): object {
  const AsyncRedisPersistence = createRequire(import.meta.url)('aedes-persistence-redis/asyncPersistence.js') as new (options: {
    conn: Redis
  }) => { createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> }
  class RedisPersistence extends AsyncRedisPersistence {
    override createRetainedStreamCombi(patterns: string[]): Readable & AsyncIterable<unknown> {
      return Readable.from(super.createRetainedStreamCombi(patterns))
    }
  }
  return new RedisPersistence({ conn })
}

/**
 * aedes' heartbeat between nodes (aedes' default is 60 s). A node that stops (SIGKILL, power) is taken for
 * dead once its last heartbeat is 3 heartbeats old, and every node looks for a dead node's wills every 4
 * heartbeats: its devices' wills go out within WILL_BOUND_MS of its death.
 */
export const CLUSTER_HEARTBEAT_MS = 500
export const WILL_BOUND_MS = 7 * CLUSTER_HEARTBEAT_MS + 500

/** What a broker node shares with the others through Redis (docs/architecture.md, "Scale-out"). */
export interface ClusterBackend {
  /** the Redis URL without its password, for logs and errors */
  readonly shownUrl: string
  /** fan-out between nodes (mqemitter-redis: Redis pub/sub, at most once) */
  readonly mq: object
  /** sessions, subscriptions, retained messages, wills and offline QoS 1 queues (aedes-persistence-redis 12) */
  readonly persistence: object
  /** commands: the clientId epochs (client-lease.ts), the connect-rate limiter, the session bounds */
  readonly redis: Redis
  close(): Promise<void>
}

/** The URL as it may be shown: the password (and a user's name) replaced. */
export function shownRedisUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    if (u.username) u.username = '***'
    return u.toString()
  } catch {
    return 'an unparseable URL'
  }
}

/**
 * Connects to the cluster's Redis (three connections: commands, pub/sub publish and subscribe) and fails
 * with GH_BROKER_CLUSTER_UNREACHABLE when any of them cannot connect at start. Later outages are retried
 * by ioredis (subscriptions come back with the connection) and logged once per outage.
 */
export async function connectCluster(options: ClusterOptions, deps: { log: Logger }): Promise<ClusterBackend> {
  const log = deps.log.child({ module: 'broker.cluster' })
  const shownUrl = shownRedisUrl(options.redisUrl)
  const [{ Redis }, { default: MQEmitterRedis }] = await Promise.all([import('ioredis'), import('mqemitter-redis')])
  const connections = ['commands', 'publish', 'subscribe'].map((role) => {
    // auto-pipelining (ioredis): the commands a turn of the event loop issues leave in one write instead of a
    // socket write each: every message's PUBLISH (mqemitter-redis asks for it, but only on connections it
    // makes itself) and the ~10 round trips of each CONNECT (bench/README.md, "Cluster"). Order on a
    // connection is kept. Not on the subscriber: a connection in subscribe mode sends only (P)SUBSCRIBEs.
    const redis = new Redis(options.redisUrl, { lazyConnect: true, connectTimeout: 5000, enableAutoPipelining: role !== 'subscribe' })
    let down = false
    redis.on('error', (err: Error) => {
      if (down) return
      down = true
      log.warn({ role, redisUrl: shownUrl, err: { message: err.message } }, 'cluster Redis unreachable: retrying')
    })
    redis.on('ready', () => {
      if (!down) return
      down = false
      log.info({ role, redisUrl: shownUrl }, 'cluster Redis reachable again')
    })
    return redis
  })
  const [redis, pubConn, subConn] = connections as [Redis, Redis, Redis]
  try {
    await Promise.all(connections.map((c) => c.connect()))
  } catch (err) {
    for (const c of connections) c.disconnect()
    throw new ClusterUnreachable(shownUrl, (err as Error).message, { cause: err })
  }
  // as aedes builds its own mqemitter: wildcards match empty levels [MQTT-4.7.1-3], 100 deliveries at once
  const mq = MQEmitterRedis({ pubConn, subConn, matchEmptyLevels: true, concurrency: 100 })
  // mqemitter-redis re-emits its connections' errors here: without a listener an outage would crash the node
  ;(mq as unknown as { state: { on(event: 'error', listener: () => void): void } }).state.on('error', () => {})
  const persistence = redisPersistence(redis)
  log.info({ redisUrl: shownUrl }, 'cluster Redis connected')
  return {
    shownUrl,
    mq,
    persistence,
    redis,
    // aedes.close() closes mq (both pub/sub connections); the commands connection is ours to end
    async close() {
      await redis.quit().catch(() => redis.disconnect())
    },
  }
}
