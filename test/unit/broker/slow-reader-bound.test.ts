import { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { startCore } from '../../helpers/broker-harness.ts'
import { asTlsPeer, fakePeerCertificate, packetClient } from '../../helpers/mqtt-packet-stream.ts'
import { waitFor } from '../../helpers/wait.ts'

// broker/slow-reader-bound.ts on the real aedes client: a connection whose writes the test holds (a
// socket that does not drain, as a client that stops reading leaves it) and a device subscribed at QoS 1.

const MAX_QUEUED = 20
const PAYLOAD = Buffer.alloc(256, 'x')
/** more than the socket's high-water mark (16 KiB): aedes waits for its drain */
const LARGE = Buffer.alloc(20 * 1024, 'x')

/** A duplex pair whose broker-side writes are held (neither delivered nor called back) while `stalled`. */
function stallablePair() {
  let stalled = false
  const held: { chunk: Buffer; cb: () => void }[] = []
  const device = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      broker.push(chunk)
      cb()
    },
  })
  const broker = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (stalled) return void held.push({ chunk, cb })
      device.push(chunk)
      cb()
    },
  })
  return { broker, device, stall: () => void (stalled = true) }
}

describe('slow-reader-bound on a real aedes client', () => {
  it('a QoS 0 message to a QoS 1 subscription counts once against maxQueuedMessages', async () => {
    const h = await startCore({ limits: { maxQueuedMessages: MAX_QUEUED } })
    h.device('pump-7', 'aa01')
    const pair = stallablePair()
    asTlsPeer(pair.broker, fakePeerCertificate({ cn: 'pump-7', serial: 'aa01' }))
    h.core.handle(pair.broker)
    const client = packetClient(pair.device)
    client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'pump-7', clean: true, keepalive: 60 })
    expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/pump-7/settings', qos: 1 }] })
    expect(await client.next()).toMatchObject({ cmd: 'suback', granted: [1] })

    // the device stops reading: one message past the socket's high-water mark waits for its drain
    pair.stall()
    await h.core.publishToDevice('devices/pump-7/settings', LARGE, { qos: 0 })
    await waitFor(() => pair.broker.writableNeedDrain, 2000, 'the socket backed up')
    expect(h.core.sessionStats().droppedMessages).toBe(0)
    // a burst of 20 QoS 0 messages: 19 fit the bound of 20 held with the first, the last is dropped
    await Promise.all(Array.from({ length: 20 }, () => h.core.publishToDevice('devices/pump-7/settings', PAYLOAD, { qos: 0 })))
    expect(h.core.sessionStats().droppedMessages).toBe(1)
  })
})
