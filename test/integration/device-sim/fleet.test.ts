import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { configSchema, loadConfig } from '../../../config.ts'
import { connectDevice, connectFleet, type DeviceBundle } from '../../../device-sim/index.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

/** A real Gatehouse on ephemeral ports with `count` devices provisioned by its own authority. */
async function gatehouseWithDevices(count: number) {
  const dataDir = join(tempDir(), 'data')
  const httpPort = 'httpPort' in (configSchema.properties ?? {}) ? { httpPort: 0 } : {}
  const config = loadConfig({ dataDir, mqttPort: 0, ...httpPort }, {})
  const gatehouse = await startGatehouse(config, { log: pino({ level: 'silent' }) })
  onTestFinished(() => gatehouse.close())
  const batch = await gatehouse.control.authority.prepareBatch({ count, prefix: 'sim-' }, 'test')
  await batch.commit()
  const devices: DeviceBundle[] = batch.issued.map((i) => ({
    deviceId: i.deviceId,
    cert: i.certificatePem,
    key: i.privateKey?.pem ?? '',
    ca: i.chainPem,
  }))
  return { gatehouse, devices }
}

describe('device-sim fleet connector', () => {
  it('connects every device of a fleet with its own certificate, clientId = CN, a bounded number at a time', async () => {
    const { gatehouse, devices } = await gatehouseWithDevices(6)
    const progress: number[] = []
    const fleet = await connectFleet(devices, { port: gatehouse.mqtt.port, concurrency: 2, onProgress: (n) => progress.push(n) })
    onTestFinished(() => fleet.close())

    expect(fleet.outcomes).toHaveLength(6)
    expect(fleet.outcomes.every((o) => o.ok && o.connack === 0 && o.error === null && o.latencyMs > 0)).toBe(true)
    expect(fleet.connected.map((c) => c.deviceId)).toEqual(devices.map((d) => d.deviceId))
    expect(fleet.notTried).toBe(0)
    expect(progress).toEqual([1, 2, 3, 4, 5, 6])
    expect(gatehouse.broker.connectedDeviceIds().sort()).toEqual(devices.map((d) => d.deviceId).sort())

    // the connected clients are usable: a device's telemetry reaches the broker as that device
    const seen = new Promise<{ deviceId: string; topic: string }>((resolve) => gatehouse.broker.onDevicePublish((m) => resolve(m)))
    const first = fleet.connected[0]!
    await first.client.publishAsync(`devices/${first.deviceId}/telemetry`, '{"t":1}', { qos: 1 })
    expect(await seen).toMatchObject({ deviceId: first.deviceId, topic: `devices/${first.deviceId}/telemetry` })

    await fleet.close()
    await waitFor(
      () => gatehouse.broker.connectedDeviceIds().length === 0,
      2000,
      () => `none connected; have ${gatehouse.broker.connectedDeviceIds()}`,
    )
  })

  it('reports a refused device (CONNACK 5) as a failed outcome and connects the rest', async () => {
    const { gatehouse, devices } = await gatehouseWithDevices(3)
    await gatehouse.control.authority.disableDevice('sim-0002', 'test')
    const fleet = await connectFleet(devices, { port: gatehouse.mqtt.port, concurrency: 3 })
    onTestFinished(() => fleet.close())

    expect(fleet.connected.map((c) => c.deviceId)).toEqual(['sim-0001', 'sim-0003'])
    expect(fleet.outcomes.find((o) => o.deviceId === 'sim-0002')).toMatchObject({ ok: false, connack: 5 })
    await expect(connectDevice(devices[1]!, { port: gatehouse.mqtt.port })).rejects.toMatchObject({ outcome: { ok: false, connack: 5 } })
  })
})
