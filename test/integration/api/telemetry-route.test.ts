import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { openControlPlane } from '../../../provisioning/index.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

describe('GET /v1/devices/{id}/telemetry on a running Gatehouse (real broker, real mutual TLS, real registry)', () => {
  it('returns the last values a device published over MQTT, newest first, bounded by ?limit', async () => {
    const dataDir = join(tempDir(), 'data')
    const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log: pino({ level: 'silent' }) })
    onTestFinished(() => gatehouse.close())
    const operator = await openControlPlane(dataDir, {}, { log: pino({ level: 'silent' }) })
    onTestFinished(() => operator.close())
    const issued = await operator.authority.createDevice({ id: 'pump-7', group: 'pumps' }, 'operator:test')
    const client = await connectDevice(gatehouse.mqtt.port, {
      deviceId: 'pump-7',
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    })
    onTestFinished(() => client.endAsync())
    const { token } = await gatehouse.control.apiKeys.create({ name: 'fleet-app', scopes: ['telemetry:read'] }, 'operator:test')
    const read = async (query: string) => {
      const res = await fetch(`${gatehouse.http.url}/v1/devices/pump-7/telemetry${query}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      expect(res.status).toBe(200)
      return (await res.json()) as { deviceId: string; items: { subtopic: string; format: string; value: unknown; receivedAt: string }[] }
    }
    for (let i = 1; i <= 25; i++) await client.publishAsync('devices/pump-7/telemetry', JSON.stringify({ temp: i }), { qos: 1 })
    await client.publishAsync('devices/pump-7/telemetry/raw', Buffer.from([0xde, 0xad]), { qos: 1 })
    // the ring records on the broker's publish event, which need not precede the PUBACK: wait for the last one
    await waitFor(async () => (await read('?limit=1')).items[0]?.subtopic === 'raw', 2000, 'the last message in the ring')
    const two = await read('?limit=2')
    expect(two.deviceId).toBe('pump-7')
    expect(two.items.map(({ subtopic, format, value }) => ({ subtopic, format, value }))).toEqual([
      { subtopic: 'raw', format: 'base64', value: '3q0=' },
      { subtopic: '', format: 'json', value: { temp: 25 } },
    ])
    const all = await read('?limit=100')
    expect(all.items).toHaveLength(20) // the ring keeps the last 20
    expect(all.items.at(-1)?.value).toEqual({ temp: 7 })
  })
})
