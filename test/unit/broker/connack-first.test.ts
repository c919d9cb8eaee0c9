import { describe, expect, it } from 'vitest'
import { startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

const A = 'dev-a'
const SERIAL = 'aa01'
const INSIGHTS = `devices/${A}/insights`

interface SlowPersistence {
  delWill(client: unknown): Promise<unknown>
}

describe('CONNACK before any PUBLISH [MQTT-3.2.0-1]', () => {
  it('holds a message that arrives between restoring the subscriptions and the CONNACK until the CONNACK is written', async () => {
    const h = await startCore()
    h.device(A, SERIAL)
    const first = await h.connect({ clientId: A, serial: SERIAL, clean: false })
    first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: INSIGHTS, qos: 1 }] })
    await waitFor(() => first.client.received.some((p) => p.cmd === 'suback'), 2000, 'SUBACK')
    first.client.end()
    await first.client.closed

    // aedes restores the session's subscriptions, then stores the will (delWill first), then writes the
    // CONNACK. On Redis those steps take round trips, during which a message is published: here the
    // message is published inside delWill, deterministically.
    const persistence = (h.core.aedes as unknown as { persistence: SlowPersistence }).persistence
    const delWill = persistence.delWill.bind(persistence)
    let published = false
    persistence.delWill = async (client) => {
      if (!published) {
        published = true
        // not awaited: a QoS 1 publish completes when it is delivered, which is after the CONNACK now
        void h.core.publishToDevice(INSIGHTS, 'in the window', { qos: 1 })
        // let the delivery run to the write (in-memory: a few turns; aedes defers each write by one setImmediate)
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve))
      }
      return delWill(client)
    }
    const { client, connack } = await h.connect({ clientId: A, serial: SERIAL, clean: false })
    expect(published).toBe(true)
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0, sessionPresent: true })
    const message = await waitFor(() => client.received.find((p) => p.cmd === 'publish'), 2000, 'the held PUBLISH')
    expect(message).toMatchObject({ topic: INSIGHTS })
  })
})
