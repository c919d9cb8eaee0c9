import type { Aedes, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'

const NEW_CLIENTS = '$SYS/+/new/clients'
/** epochs are kept a day after the last connect of a clientId (a new one starts again from 1) */
const EPOCH_TTL_SECONDS = 86_400

type MqListener = (packet: { topic: string; payload: Buffer }, done: () => void) => void
interface Mq {
  on(topic: string, listener: MqListener, done?: () => void): unknown
}

export interface ClientLease {
  /** Takes the next epoch of a clientId (Redis INCR) for a connection that is about to be accepted. */
  take(client: Client, clientId: string): Promise<void>
}

/**
 * One live session per clientId across the nodes of a cluster. aedes tells the other nodes about each
 * new client ($SYS/<node>/new/clients) and every node closes its own client of that id, without a lock:
 * two simultaneous connects on two nodes close each other and leave none. Here each accepted connection
 * first takes the clientId's next epoch in Redis (INCR, atomic), and a node closes its own client on
 * another node's announcement only when its epoch is no longer the latest: of two simultaneous
 * connects exactly one, the later epoch, stays; a node also checks its own announcement, for the case
 * where the newer connection announced itself before the older one had registered here. A connection
 * with no epoch (a claim session) is
 * handled as aedes does. Installed on the cluster's mq before aedes listens (aedes subscribes then).
 */
export function createClientLease(mq: Mq, redis: Redis, aedes: Aedes, deps: { log: Logger; onStale(client: Client): void }): ClientLease {
  const epochs = new WeakMap<Client, number>()
  const key = (clientId: string) => `gh:epoch:${clientId}`
  const on = mq.on.bind(mq)
  mq.on = (topic, listener, done) => on(topic, topic === NEW_CLIENTS ? guard(listener) : listener, done)

  function guard(closeSameClients: MqListener): MqListener {
    return (packet, done) => {
      const local = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[packet.payload.toString()]
      const epoch = local ? epochs.get(local) : undefined
      if (!local || epoch === undefined) return closeSameClients(packet, done)
      // this node's own announcement: a newer epoch taken elsewhere before it registered would find
      // no client here to close when its announcement arrived first, so the stale one closes itself
      const own = packet.topic.split('/')[1] === aedes.id
      redis.get(key(local.id)).then(
        (latest) => {
          if (Number(latest) <= epoch) return done()
          deps.onStale(local)
          if (!own) return closeSameClients(packet, done)
          local.close()
          done()
        },
        (err: unknown) => {
          // Redis away: aedes' rule (the newcomer wins) rather than two live sessions
          deps.log.warn({ err, clientId: local.id }, 'clientId epoch unreadable: closing the local session')
          closeSameClients(packet, done)
        },
      )
    }
  }

  return {
    async take(client, clientId) {
      const [[err, epoch] = [null, null]] = (await redis.multi().incr(key(clientId)).expire(key(clientId), EPOCH_TTL_SECONDS).exec()) ?? []
      if (err) throw err
      epochs.set(client, Number(epoch))
    },
  }
}
