import { join } from 'node:path'
import pino from 'pino'
import { onTestFinished } from 'vitest'
import type { Random } from '../../../certs/index.ts'
import { loadConfig, type ConfigInput } from '../../../config.ts'
import type { DeviceBundle } from '../../../device-sim/index.ts'
import type { SimulatedDeviceOptions } from '../../../device-sim/device-types.ts'
import { SimulatedDevice } from '../../../device-sim/simulated-device.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/**
 * A real Gatehouse in this process (temp data dir, MQTT and HTTP on port 0), with the AI bridge's
 * local analyzer answering quickly (small windows, roomy limits), and devices made by its own authority.
 */
export async function simGatehouse(config: ConfigInput = {}, deps: { clock?: { now(): Date }; random?: Random } = {}) {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const ai = {
    windowing: { messages: 3, seconds: 1 },
    tiers: { standard: { provider: 'local', limits: { requestsPerMinute: 600, burst: 100 } } },
  }
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, ai, ...config }, {}), {
    log: pino({ level: 'silent' }),
    ...deps,
  })
  onTestFinished(() => gatehouse.close())
  return { dir, dataDir, gatehouse, broker: `mqtts://127.0.0.1:${gatehouse.mqtt.port}` }
}

export async function createDevices(gatehouse: Gatehouse, ids: string[], group = 'sim'): Promise<DeviceBundle[]> {
  const out: DeviceBundle[] = []
  for (const id of ids) {
    const issued = await gatehouse.control.authority.createDevice({ id, group }, 'operator:test')
    out.push({ deviceId: id, cert: issued.certificatePem, key: issued.privateKey?.pem ?? '', ca: issued.chainPem })
  }
  return out
}

/** A started simulated device, stopped when the test ends. */
export function startDevice(bundle: DeviceBundle, options: SimulatedDeviceOptions, events: unknown[] = []): SimulatedDevice {
  const device = new SimulatedDevice(
    bundle,
    { startJitter: false, backoff: { minMs: 100, maxMs: 1000 }, ...options },
    { onEvent: (e) => events.push(e) },
  )
  device.start()
  onTestFinished(() => device.stop().then(() => undefined))
  return device
}

/** Telemetry the broker accepted, per device, parsed. */
export function recordTelemetry(gatehouse: Gatehouse) {
  const seen: { deviceId: string; topic: string; body: Record<string, unknown> }[] = []
  const off = gatehouse.broker.onDevicePublish((m) => {
    if (m.kind !== 'telemetry') return
    try {
      seen.push({ deviceId: m.deviceId, topic: m.topic, body: JSON.parse(m.payload.toString('utf8')) as Record<string, unknown> })
    } catch {
      // not JSON: not ours
    }
  })
  onTestFinished(off)
  return {
    seen,
    readings: (deviceId: string) =>
      seen.filter((s) => s.deviceId === deviceId && s.topic === `devices/${deviceId}/telemetry`).map((s) => s.body),
    alerts: (deviceId: string) => seen.filter((s) => s.topic === `devices/${deviceId}/telemetry/alerts`).map((s) => s.body),
  }
}
