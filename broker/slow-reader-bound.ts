import type { Client } from 'aedes'
import type { Logger } from 'pino'
import type { EventThrottle } from '../certs/index.ts'
import type { BrokerLimits } from './limits.ts'

type Deliver = (packet: DeliveredPacket, done: () => void) => void

interface DeliveredPacket {
  qos?: number
  topic?: string
  payload?: Buffer | Uint8Array | string
}

/** The parts of an aedes 1.2 Client this reads and wraps (lib/client.js). */
interface Deliveries {
  id: string | null
  conn: { writableNeedDrain: boolean }
  deliver0: Deliver
  deliverQoS: Deliver
}

const sizeOf = (p: DeliveredPacket): number => (p.topic?.length ?? 0) + (p.payload?.length ?? 0)

export interface SlowReaderBound {
  /** Wraps one client's deliveries (call once per connection, after any other wrapper of them). */
  bound(client: Client): void
  /** messages dropped because a connected client was not reading, since start */
  dropped(): number
}

/**
 * A connected client that stops reading holds at most limits.maxQueuedMessages messages and
 * limits.maxQueuedBytes bytes of the broker's memory, and slows nobody else.
 *
 * aedes 1.2 hands each message to every subscriber and tells its emitter the message is done only when
 * every subscriber's socket took it; a socket that does not drain keeps that callback until aedes'
 * drainTimeout (30 s by default). The emitter runs at most 100 messages at once, so one client that
 * stops reading (an app subscribed to the fleet's telemetry, a device behind a stalled link) stops the
 * delivery of every message to everyone, and meanwhile 100 messages pile up in its socket's buffer.
 * This ends a delivery's hold on the emitter at once and counts instead what the client's socket still
 * has to write (handed to aedes, write not yet done): over the bound while the socket is backed up (it
 * holds more than its high-water mark, so the client is not keeping up), a message is dropped for that
 * client only (the newest: what is in a socket's buffer cannot be taken back), counted with the session
 * queues' drops and logged as GH_BROKER_SESSION_FULL at most once per throttle window per client. A
 * client that reads again gets what its socket kept, then every new message. aedes' drainTimeout still
 * closes a client that reads nothing for that long. A persistent session's QoS 1/2 messages are also in
 * its stored queue (session-store.ts), so one dropped here is sent again on its next connect.
 */
export function createSlowReaderBound(
  limits: Pick<BrokerLimits, 'maxQueuedMessages' | 'maxQueuedBytes'>,
  deps: { log: Logger; throttle: EventThrottle },
): SlowReaderBound {
  let dropped = 0
  const drop = (client: Deliveries, messages: number, bytes: number) => {
    dropped++
    const clientId = String(client.id)
    const hit = deps.throttle.hit(`session.queue-full:${clientId}`)
    if (!hit.emit) return
    deps.log.warn(
      {
        clientId,
        dropped: 1,
        suppressed: hit.suppressed,
        pendingMessages: messages,
        pendingBytes: bytes,
        maxQueuedMessages: limits.maxQueuedMessages,
        maxQueuedBytes: limits.maxQueuedBytes,
        code: 'GH_BROKER_SESSION_FULL',
      },
      'session queue full: the client is not reading, dropped the newest message',
    )
  }
  return {
    bound(client) {
      const c = client as unknown as Deliveries
      let messages = 0
      let bytes = 0
      for (const name of ['deliver0', 'deliverQoS'] as const) {
        const original = c[name]
        c[name] = (packet, done) => {
          // aedes' deliverQoS hands a QoS 0 message on to client.deliver0 (this wrapper too): counted there, once
          if (name === 'deliverQoS' && packet.qos === 0) return original(packet, done)
          const size = sizeOf(packet)
          // over the bound while its socket is backed up (a client that reads keeps up, however many
          // messages one turn hands it); one message always fits (maxQueuedBytes >= maxPacketBytes)
          const over = messages > 0 && (messages >= limits.maxQueuedMessages || bytes + size > limits.maxQueuedBytes)
          if (over && c.conn.writableNeedDrain) {
            drop(c, messages, bytes)
            setImmediate(done)
            return
          }
          messages++
          bytes += size
          original(packet, () => {
            messages--
            bytes -= size
          })
          // as aedes does for a message it does not forward: the emitter goes on at the next turn
          setImmediate(done)
        }
      }
    },
    dropped: () => dropped,
  }
}
