// A subscriber client in its own process, for brokers that have no in-process consumer (Mosquitto):
// connects as one device, subscribes to devices/+/telemetry/# at QoS 0, and counts arrivals with the
// consumer protocol of ipc.ts. Sends { type: 'ready' } once subscribed.
//   node --import tsx bench/brokers/mqtt-consumer.ts   (then { type: 'init', port, device } over IPC)
import { closeClients, connectDevice } from '../../device-sim/index.ts'
import { onCloseRequest, serveConsumer, type ChildMessage, type ParentMessage } from './ipc.ts'

const onPayload = serveConsumer()

process.once('message', async (m: ParentMessage) => {
  if (m.type !== 'init') return
  try {
    const { client } = await connectDevice(m.device, { port: m.port })
    client.on('message', (_topic, payload) => onPayload(payload))
    await client.subscribeAsync('devices/+/telemetry/#', { qos: 0 })
    onCloseRequest(() => closeClients([client], 2000))
    process.send?.({ type: 'ready' } satisfies ChildMessage)
  } catch (err) {
    process.send?.({ type: 'failed', error: String((err as Error).message) } satisfies ChildMessage)
    process.exit(1)
  }
})
