import type { AddressInfo } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it, onTestFinished } from 'vitest'
import { claimDevice } from '../../../device-sim/enrollment.ts'
import { makeBrokerPki } from '../../helpers/broker-pki.ts'

/**
 * A broker that answers CONNECT and SUBSCRIBE, then dies on the PUBLISH: its connection closes before the
 * PUBACK and nothing listens any more (as a SIGKILLed gatehouse does to a claim in flight: the chaos test
 * found claim lanes hanging there, since mqtt.js keeps an unacknowledged QoS 1 PUBLISH for a reconnect).
 */
async function dyingBroker() {
  const pki = await makeBrokerPki()
  const server = createTlsServer({ ...pki.serverTls, requestCert: true, rejectUnauthorized: false }, (socket: TLSSocket) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const send = (packet: Record<string, unknown>) => socket.write(mqttPacket.generate(packet as unknown as mqttPacket.Packet))
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') send({ cmd: 'connack', returnCode: 0, sessionPresent: false })
      else if (packet.cmd === 'subscribe') send({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map(() => 1) })
      else if (packet.cmd === 'publish') {
        server.close()
        socket.destroy()
      }
    })
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => void server.close())
  const port = (server.address() as AddressInfo).port
  return { pki, address: { host: '127.0.0.1', port, url: `mqtts://127.0.0.1:${port}` } }
}

describe('device-sim enrollment against a broker that dies mid-request', () => {
  it('claimDevice rejects when the connection drops before the PUBACK, instead of waiting for a reconnect forever', async () => {
    const { pki, address } = await dyingBroker()
    const claim = await pki.claim('batch-1')
    await expect(
      claimDevice({ claim: { cert: claim.cert, key: claim.key, ca: claim.ca }, broker: address, deviceId: 'pump-1', timeoutMs: 5000 }),
    ).rejects.toThrow(/GH_SIM_|closed|answer/) // without the bound it never settles: the test's timeout ends it
  })
})
