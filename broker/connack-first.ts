import type { Aedes, Client } from 'aedes'

type Deliver = (packet: unknown, done: () => void) => void

/** The parts of an aedes 1.2 Client this reads and wraps (lib/client.js). */
interface Deliveries {
  deliver0: Deliver
  deliverQoS: Deliver
  connackSent: boolean
  conn: { once(event: 'close', listener: () => void): unknown }
}

/**
 * CONNACK first [MQTT-3.2.0-1]. aedes 1.2 restores a persistent session's subscriptions (restoreSubs)
 * before it writes the CONNACK (doConnack), and writes while the client is `connecting`: a message
 * published in between (on Redis those steps take round trips; a takeover across nodes with QoS 1
 * traffic hits it most times) is written before the CONNACK, and mqtt.js drops the connection. This
 * holds a client's deliveries until aedes has written its CONNACK, then delivers them in order.
 * Messages held are bounded by `maxHeld`: one more closes the connection (onOverflow); a QoS 1 message
 * of a persistent session stays queued in the persistence and is sent on the next connect.
 * docs/upstream/aedes-connack-before-publish.md is the same change proposed for aedes itself.
 */
export function holdUntilConnack(aedes: Aedes, maxHeld: number, onOverflow: (client: Client) => void): (client: Client) => void {
  const held = new WeakMap<Client, [Deliver, unknown, () => void][]>()
  const release = (client: Client, deliver: boolean) => {
    const queue = held.get(client)
    held.delete(client)
    for (const [original, packet, done] of queue ?? []) deliver ? original(packet, done) : done()
  }
  // emitted once the CONNACK is written, just before aedes sets connackSent
  aedes.on('connackSent', (_connack, client) => release(client, true))

  return (client) => {
    const c = client as unknown as Deliveries
    held.set(client, [])
    c.conn.once('close', () => release(client, false))
    for (const name of ['deliver0', 'deliverQoS'] as const) {
      const original = c[name]
      c[name] = (packet, done) => {
        const queue = held.get(client)
        if (c.connackSent || queue === undefined) return original(packet, done)
        if (queue.length >= maxHeld) {
          done()
          return onOverflow(client)
        }
        queue.push([original, packet, done])
      }
    }
  }
}
