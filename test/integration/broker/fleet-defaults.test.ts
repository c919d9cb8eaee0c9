import mqtt, { type MqttClient } from 'mqtt'
import { beforeAll, describe, expect, it } from 'vitest'
import { startBroker } from '../../helpers/broker-harness.ts'
import { makeBrokerPki, type BrokerPki, type DeviceCredentials } from '../../helpers/broker-pki.ts'
import { connectDevice, mqttOptions } from '../../helpers/mqtt-clients.ts'

let pki: BrokerPki

beforeAll(async () => {
  pki = await makeBrokerPki()
})

/** Runs `task` over `items`, at most `width` at a time. */
async function inBatches<T, R>(items: T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(task))))
  return out
}

/** Connects once, hangs up as soon as the CONNACK arrives (a reconnect loop), and reports its code. */
async function connackOnce(port: number, creds: DeviceCredentials): Promise<number | null> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, mqttOptions(creds))
  let code: number | null = null
  client.on('packetreceive', (p) => {
    if (p.cmd === 'connack') {
      code = (p as { returnCode?: number }).returnCode ?? null
      client.end(true)
    }
  })
  client.on('error', () => {})
  await new Promise<void>((resolve) => client.once('close', () => resolve()))
  client.end(true)
  return code
}

/**
 * Issue 10, "Defaults that fit a fleet": the old per-address defaults (100 open, 20/s burst 50)
 * refused most of a fleet behind one NAT. Here every device arrives from 127.0.0.1.
 */
describe('default limits and a fleet behind one address', () => {
  it('300 devices from one address all connect with the default limits and stay connected', async () => {
    const h = await startBroker(pki.serverTls)
    const devices: DeviceCredentials[] = []
    for (let i = 0; i < 300; i++) {
      const dev = await pki.device(`nat-${i}`)
      h.directory.addCertificate(dev.deviceId, dev.serial)
      devices.push(dev)
    }
    const clients: MqttClient[] = await inBatches(devices, 50, (dev) => connectDevice(h.port, dev))
    expect(clients.filter((c) => c.connected)).toHaveLength(300)
    expect(h.broker.connectedDeviceIds()).toHaveLength(300)
    expect(h.directory.auditsFor('connection.throttled')).toEqual([])
    expect(h.directory.auditsFor('connect.refused')).toEqual([])
  }, 60_000)

  it('a device in a reconnect loop is refused with CONNACK 3 after its budget; another device from the same address still connects', async () => {
    const h = await startBroker(pki.serverTls, { limits: { connectRatePerClientId: { ratePerSecond: 0.001, burst: 5 } } })
    const looping = await pki.device('loop-1')
    const other = await pki.device('calm-1')
    h.directory.addCertificate('loop-1', looping.serial)
    h.directory.addCertificate('calm-1', other.serial)
    const codes: (number | null)[] = []
    // bounded loop: connect and drop, until refused (at most 10 tries)
    for (let i = 0; i < 10 && codes.at(-1) !== 3; i++) {
      codes.push(await connackOnce(h.port, looping))
    }
    expect(codes).toEqual([0, 0, 0, 0, 0, 3])
    expect(await connackOnce(h.port, looping)).toBe(3)
    await connectDevice(h.port, other)
    expect(h.broker.isConnected('calm-1')).toBe(true)
    const refused = h.directory.auditsFor('connect.refused')
    expect(refused.length).toBeGreaterThanOrEqual(1)
    expect(refused.every((a) => a.subject === 'loop-1' && a.details?.reason === 'connect-rate')).toBe(true)
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: 'connect refused', reason: 'connect-rate', code: 'GH_BROKER_CONNECT_RATE_LIMITED' }),
    )
  })
})
