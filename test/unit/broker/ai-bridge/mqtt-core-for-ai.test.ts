import type { IPublishPacket } from 'mqtt-packet'
import { aiBridgeCoreContract } from '../../../contract/ai-bridge-core.contract.ts'
import { startCore } from '../../../helpers/broker-harness.ts'
import type { PacketClient } from '../../../helpers/mqtt-packet-stream.ts'

// The real createMqttCore (in-memory connections, the fake directory) serving the AI bridge's slice.
aiBridgeCoreContract('createMqttCore', async () => {
  const h = await startCore()
  const clients = new Map<string, PacketClient>()
  const client = (deviceId: string) => clients.get(deviceId) ?? Promise.reject(new Error(`${deviceId} is not connected`))
  return {
    core: h.core,
    clock: h.clock,
    async connect(deviceId) {
      const serial = Buffer.from(deviceId).toString('hex')
      h.device(deviceId, serial)
      const { client: c, connack } = await h.connect({ clientId: deviceId, serial })
      if (connack.cmd !== 'connack' || connack.returnCode !== 0) throw new Error(`${deviceId} refused: ${JSON.stringify(connack)}`)
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${deviceId}/insights`, qos: 1 }] })
      const suback = await c.next()
      if (suback.cmd !== 'suback') throw new Error(`expected suback, got ${suback.cmd}`)
      clients.set(deviceId, c)
    },
    telemetry(deviceId, payload, ...subtopic) {
      const topic = [`devices/${deviceId}/telemetry`, ...subtopic].join('/')
      clients.get(deviceId)?.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false })
    },
    async disconnect(deviceId) {
      const c = await client(deviceId)
      c.send({ cmd: 'disconnect' })
      await c.closed
    },
    async nextReceived(deviceId) {
      const c = await client(deviceId)
      const p = (await c.next()) as IPublishPacket
      if (p.cmd !== 'publish') throw new Error(`expected a publish, got ${String(p.cmd)}`)
      if (p.qos > 0) c.send({ cmd: 'puback', messageId: p.messageId })
      return { topic: p.topic, payload: Buffer.from(p.payload), qos: p.qos }
    },
  }
})
