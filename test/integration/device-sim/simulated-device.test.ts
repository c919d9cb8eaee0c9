import { describe, expect, it } from 'vitest'
import type { SimEvent } from '../../../device-sim/device-types.ts'
import { createDevices, recordTelemetry, simGatehouse, startDevice } from './gatehouse-fixture.ts'

const seqs = (readings: Record<string, unknown>[]) => readings.map((r) => r.seq as number)

describe('device-sim SimulatedDevice against a real Gatehouse', () => {
  it('connects over mTLS as itself and publishes realistic telemetry at its rate, QoS 1 acknowledged', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0001'])
    const telemetry = recordTelemetry(gatehouse)
    const device = startDevice(bundle!, { broker, ratePerSecond: 20 })
    expect(await device.whenConnected(5000)).toBe(true)
    expect(gatehouse.broker.isConnected('sim-0001')).toBe(true)
    await expect.poll(() => telemetry.readings('sim-0001').length, { timeout: 5000 }).toBeGreaterThanOrEqual(10)
    const [first] = telemetry.readings('sim-0001')
    expect(Object.keys(first!).sort()).toEqual(['humidity', 'seq', 'temperature', 'ts', 'vibration'])
    expect(first).toMatchObject({ seq: 1, temperature: expect.any(Number), humidity: expect.any(Number), vibration: expect.any(Number) })
    await expect.poll(() => device.stats().acked, { timeout: 2000 }).toBeGreaterThanOrEqual(10)
    const stats = await device.stop()
    expect(stats).toMatchObject({ connected: false, queued: 0, errors: 0, reconnects: 0 })
    expect(stats.acked).toBe(stats.sent)
    await expect.poll(() => gatehouse.broker.isConnected('sim-0001'), { timeout: 2000 }).toBe(false)
  })

  it('applies a group settings change: the interval and thresholds change what it does, and it reports the version back', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const bundles = await createDevices(gatehouse, ['sim-0001', 'sim-0002'])
    const telemetry = recordTelemetry(gatehouse)
    const events: SimEvent[] = []
    const devices = bundles.map((b) => startDevice(b, { broker, ratePerSecond: 2 }, events))
    for (const d of devices) expect(await d.whenConnected(5000)).toBe(true)
    // the document delivered on subscribe is applied (and reported) first
    await expect.poll(() => devices.every((d) => d.stats().settingsApplied === 1), { timeout: 3000 }).toBe(true)

    const layer = gatehouse.control.settings.patchLayer({ kind: 'group', group: 'sim' }, { interval: 0.1, thresholds: { temperature: { max: -40 } } }, { actor: 'operator:test' })
    expect(layer.devicesChanged).toBe(2)
    const version = gatehouse.control.settings.getDevice('sim-0001').version
    await expect.poll(() => devices.map((d) => d.stats().settingsVersion), { timeout: 3000 }).toEqual([version, version])
    expect(devices.map((d) => d.stats().intervalMs)).toEqual([100, 100])

    // the reports reached the registry: desired and reported agree
    for (const id of ['sim-0001', 'sim-0002']) {
      await expect.poll(() => gatehouse.control.settings.getDevice(id).reported?.version, { timeout: 3000 }).toBe(version)
      expect(gatehouse.control.settings.getDevice(id).inSync).toBe(true)
    }

    // 10 messages/s now instead of 2
    const before = telemetry.readings('sim-0001').length
    await new Promise((r) => setTimeout(r, 1500))
    expect(telemetry.readings('sim-0001').length - before).toBeGreaterThanOrEqual(9)

    // every reading is above the new maximum: one alert per crossing, published at once
    await expect.poll(() => telemetry.alerts('sim-0001').length, { timeout: 2000 }).toBe(1)
    expect(telemetry.alerts('sim-0001')[0]).toMatchObject({ type: 'threshold', metric: 'temperature', bound: 'max', limit: -40 })
    expect(devices[0]!.stats().alerts).toBe(1)
    expect(events.filter((e) => e.type === 'alert')).toHaveLength(2)

    // an older or repeated version is not applied again
    const applied = devices[0]!.stats().settingsApplied
    gatehouse.control.settings.patchLayer({ kind: 'group', group: 'sim' }, { interval: 0.1 }, { actor: 'operator:test' }) // no change: no new version
    await new Promise((r) => setTimeout(r, 300))
    expect(devices[0]!.stats().settingsApplied).toBe(applied)
  })

  it('logs the insights the local analyzer sends back, including the threshold anomalies its settings define', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0003'])
    gatehouse.control.settings.patchDevice('sim-0003', { thresholds: { vibration: { max: 0.01 } } }, { actor: 'operator:test' })
    const events: SimEvent[] = []
    const device = startDevice(bundle!, { broker, ratePerSecond: 10 }, events)
    await expect.poll(() => device.stats().insights, { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
    const [insight] = device.stats().lastInsights
    expect(insight).toMatchObject({ type: 'insight', deviceId: 'sim-0003', provider: 'local', summary: expect.any(String) })
    expect(JSON.stringify(device.stats().lastInsights)).toContain('vibration')
    expect(events.some((e) => e.type === 'insight' && e.deviceId === 'sim-0003')).toBe(true)
  })

  it('reconnects with back-off after the broker drops it, and sends what it queued meanwhile, in order, losing nothing', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0004'])
    const telemetry = recordTelemetry(gatehouse)
    const events: SimEvent[] = []
    const device = startDevice(bundle!, { broker, ratePerSecond: 25, backoff: { minMs: 300, maxMs: 1000 } }, events)
    await expect.poll(() => telemetry.readings('sim-0004').length, { timeout: 5000 }).toBeGreaterThanOrEqual(5)

    const aedesClient = (gatehouse.broker.aedes as unknown as { clients: Record<string, { close(): void }> }).clients['sim-0004']
    aedesClient?.close()
    await expect.poll(() => events.some((e) => e.type === 'disconnected'), { timeout: 2000 }).toBe(true)
    await expect.poll(() => device.stats().reconnects, { timeout: 5000 }).toBe(1)
    expect(gatehouse.broker.isConnected('sim-0004')).toBe(true)

    // the readings made while it was away arrive after the reconnect; none is missing
    const sentByNow = device.stats().sent
    await expect.poll(() => new Set(seqs(telemetry.readings('sim-0004'))).size, { timeout: 5000 }).toBeGreaterThanOrEqual(sentByNow)
    const got = [...new Set(seqs(telemetry.readings('sim-0004')))].sort((a, b) => a - b)
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1))
    // first arrivals are in order (a message may arrive twice: QoS 1 is at least once)
    const firstArrivals = seqs(telemetry.readings('sim-0004')).filter((s, i, all) => all.indexOf(s) === i)
    expect(firstArrivals).toEqual(got)
    expect(device.stats().dropped).toBe(0)
  })

  it('keeps retrying, bounded by its back-off, while the broker refuses it, and comes back when it is enabled again', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0005'])
    gatehouse.control.authority.disableDevice('sim-0005', 'operator:test')
    const device = startDevice(bundle!, { broker, ratePerSecond: 5, backoff: { minMs: 100, maxMs: 400 } })
    await expect.poll(() => device.stats().errors, { timeout: 5000 }).toBeGreaterThanOrEqual(3)
    expect(device.stats().lastError).toMatch(/GH_SIM_CONNECT_FAILED: CONNACK 5/)
    expect(device.stats().connected).toBe(false)
    gatehouse.control.authority.enableDevice('sim-0005', 'operator:test')
    expect(await device.whenConnected(5000)).toBe(true)
    // what it measured while refused is delivered now
    await expect.poll(() => device.stats().queued, { timeout: 3000 }).toBe(0)
  })
})
