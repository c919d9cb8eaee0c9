import https from 'node:https'
import { describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { attemptConnect, connectDevice } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'
import { createDevices, recordTelemetry, simGatehouse } from '../device-sim/gatehouse-fixture.ts'
import type { Gatehouse } from '../../../gatehouse.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'

/** mqtt.js over wss:// to the broker's WebSocket listener (path /mqtt), with a device certificate. */
const WSS = { protocol: 'wss', path: '/mqtt' } as const

/** Devices made by the Gatehouse's authority, as the MQTT helpers take them. */
async function devices(gatehouse: Gatehouse, ids: string[]): Promise<DeviceCredentials[]> {
  return (await createDevices(gatehouse, ids)).map((b) => ({ ...b, serial: '' }))
}

function messages(client: MqttClient) {
  const got: { topic: string; body: string }[] = []
  client.on('message', (topic, payload) => got.push({ topic, body: payload.toString('utf8') }))
  return got
}

describe('MQTT over WebSockets with TLS (wsPort)', () => {
  it('serves a device over wss:// with its certificate: telemetry in, settings out, the same presence', async () => {
    const { gatehouse } = await simGatehouse({ wsPort: 0 })
    const ws = gatehouse.mqtt.ws
    expect(ws).not.toBeNull()
    const [pump] = await devices(gatehouse, ['ws-pump-1'])
    await gatehouse.control.settings.patchDevice('ws-pump-1', { rate: 7 }, { actor: 'operator:test' })
    const telemetry = recordTelemetry(gatehouse)

    const client = await connectDevice(ws!.port, pump!, WSS)
    expect(gatehouse.broker.isConnected('ws-pump-1')).toBe(true)
    const got = messages(client)
    await client.subscribeAsync('devices/ws-pump-1/settings', { qos: 1 })
    const settings = await waitFor(() => got.find((m) => m.topic === 'devices/ws-pump-1/settings'), 5000, 'the settings document')
    expect(JSON.parse(settings.body)).toMatchObject({ settings: { rate: 7 } })
    await client.publishAsync('devices/ws-pump-1/telemetry', JSON.stringify({ temperature: 20.5 }), { qos: 1 })
    expect(telemetry.readings('ws-pump-1')).toEqual([{ temperature: 20.5 }])

    // the topic policy is the TCP listener's: another device's topic closes the connection
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    client.publish('devices/other/telemetry', '{}', { qos: 1 })
    await closed
    await waitFor(() => !gatehouse.broker.isConnected('ws-pump-1'), 5000, 'the disconnect')
  })

  it('refuses a connection without a client certificate, a clientId that is not the CN, and a revoked device', async () => {
    const { gatehouse } = await simGatehouse({ wsPort: 0 })
    const port = gatehouse.mqtt.ws!.port
    const [good, revoked] = await devices(gatehouse, ['ws-good', 'ws-revoked'])

    const noCert = await attemptConnect(port, { ca: good!.ca }, WSS)
    expect(noCert.connack).toBeNull()
    // Node reports a missing client certificate as UNABLE_TO_GET_ISSUER_CERT
    expect(Object.fromEntries(gatehouse.broker.stats().tlsFailures)).toEqual({ UNABLE_TO_GET_ISSUER_CERT: 1 })

    const wrongCn = await attemptConnect(port, good!, { ...WSS, clientId: 'ws-revoked' })
    expect(wrongCn.connack).toBe(5)

    await gatehouse.control.authority.revokeDevice('ws-revoked', 'unspecified', 'operator:test')
    const gone = await attemptConnect(port, revoked!, WSS)
    expect(gone.connack).toBe(5)
    expect(Object.fromEntries(gatehouse.broker.stats().refused)).toMatchObject({ 'client-id-mismatch': 1, revoked: 1 })
  })

  it('answers anything but an upgrade on /mqtt with a 4xx, and closes a WebSocket message over maxPacketBytes', async () => {
    const { gatehouse } = await simGatehouse({ wsPort: 0, limits: { maxPacketBytes: 1024 } })
    const port = gatehouse.mqtt.ws!.port
    const [device] = await devices(gatehouse, ['ws-big'])
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.get({
        host: '127.0.0.1',
        port,
        path: '/',
        ca: device!.ca,
        cert: device!.cert,
        key: device!.key,
        servername: 'localhost',
      })
      req.once('response', (res) => resolve(res.statusCode ?? 0)).once('error', reject)
    })
    expect(status).toBe(426)

    const client = await connectDevice(port, device!, WSS)
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    client.publish('devices/ws-big/telemetry', Buffer.alloc(4096, 1), { qos: 0 })
    await closed
    await waitFor(() => gatehouse.broker.stats().limitHits.get('packet-size') === 1, 5000, 'the packet-size limit hit')
  })
})
