import { describe, expect, it } from 'vitest'
import type { SimEvent } from '../../../device-sim/device-types.ts'
import { createDevices, recordTelemetry, simGatehouse, startDevice } from './gatehouse-fixture.ts'
import { waitFor } from '../../helpers/wait.ts'

const seqs = (readings: Record<string, unknown>[]) => readings.map((r) => r.seq as number)

describe('device-sim SimulatedDevice against a real Gatehouse', () => {
  it('connects over mTLS as itself and publishes realistic telemetry at its rate, QoS 1 acknowledged', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0001'])
    const telemetry = recordTelemetry(gatehouse)
    const device = startDevice(bundle!, { broker, ratePerSecond: 20 })
    expect(await device.whenConnected(5000)).toBe(true)
    expect(gatehouse.broker.isConnected('sim-0001')).toBe(true)
    await waitFor(() => telemetry.readings('sim-0001').length >= 10, 5000, '10 readings')
    const [first] = telemetry.readings('sim-0001')
    expect(Object.keys(first!).sort()).toEqual(['humidity', 'seq', 'temperature', 'ts', 'vibration'])
    expect(first).toMatchObject({ seq: 1, temperature: expect.any(Number), humidity: expect.any(Number), vibration: expect.any(Number) })
    await waitFor(() => device.stats().acked >= 10, 2000, '10 acknowledged')
    const stats = await device.stop()
    expect(stats).toMatchObject({ connected: false, queued: 0, errors: 0, reconnects: 0 })
    expect(stats.acked).toBe(stats.sent)
    await waitFor(() => !gatehouse.broker.isConnected('sim-0001'), 2000, 'the broker to see it gone')
  })

  it('applies a group settings change: the interval and thresholds change what it does, and it reports the version back', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const bundles = await createDevices(gatehouse, ['sim-0001', 'sim-0002'])
    const telemetry = recordTelemetry(gatehouse)
    const events: SimEvent[] = []
    const devices = bundles.map((b) => startDevice(b, { broker, ratePerSecond: 2 }, events))
    for (const d of devices) expect(await d.whenConnected(5000)).toBe(true)
    // the document delivered on subscribe is applied (and reported) first
    await waitFor(() => devices.every((d) => d.stats().settingsApplied === 1), 3000, 'the first document applied')

    const layer = await gatehouse.control.settings.patchLayer(
      { kind: 'group', group: 'sim' },
      { interval: 0.1, thresholds: { temperature: { max: -40 } } },
      { actor: 'operator:test' },
    )
    expect(layer.devicesChanged).toBe(2)
    const version = (await gatehouse.control.settings.getDevice('sim-0001')).version
    await waitFor(
      () => devices.every((d) => d.stats().settingsVersion === version),
      3000,
      () => `version ${version}; have ${devices.map((d) => d.stats().settingsVersion)}`,
    )
    expect(devices.map((d) => d.stats().intervalMs)).toEqual([100, 100])

    // the reports reached the registry: desired and reported agree
    for (const id of ['sim-0001', 'sim-0002']) {
      await waitFor(async () => (await gatehouse.control.settings.getDevice(id)).reported?.version === version, 3000, `${id}'s report`)
      expect((await gatehouse.control.settings.getDevice(id)).inSync).toBe(true)
    }

    // 10 messages/s now instead of 2: 9 more readings within 1.5 s (at 2/s they would take 4.5 s)
    const before = telemetry.readings('sim-0001').length
    const started = performance.now()
    await waitFor(() => telemetry.readings('sim-0001').length - before >= 9, 5000, '9 more readings')
    expect(performance.now() - started).toBeLessThan(1500)

    // every reading is above the new maximum: one alert per crossing, published at once
    await waitFor(() => telemetry.alerts('sim-0001').length > 0, 2000, 'the alert')
    expect(telemetry.alerts('sim-0001')).toHaveLength(1)
    expect(telemetry.alerts('sim-0001')[0]).toMatchObject({ type: 'threshold', metric: 'temperature', bound: 'max', limit: -40 })
    expect(devices[0]!.stats().alerts).toBe(1)
    expect(events.filter((e) => e.type === 'alert')).toHaveLength(2)

    // an older or repeated version is not applied again
    const applied = devices[0]!.stats().settingsApplied
    await gatehouse.control.settings.patchLayer({ kind: 'group', group: 'sim' }, { interval: 0.1 }, { actor: 'operator:test' }) // no change: no new version
    // the marker: a real change after it, applied once; a repeat of the old version would have come first
    await gatehouse.control.settings.patchLayer({ kind: 'group', group: 'sim' }, { marker: 1 }, { actor: 'operator:test' })
    const marked = (await gatehouse.control.settings.getDevice('sim-0001')).version
    expect(marked).toBe(version + 1)
    await waitFor(() => devices[0]!.stats().settingsVersion === marked, 3000, 'the marker version')
    expect(devices[0]!.stats().settingsApplied).toBe(applied + 1)
  })

  it('logs the insights the local analyzer sends back, including the threshold anomalies its settings define', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0003'])
    await gatehouse.control.settings.patchDevice('sim-0003', { thresholds: { vibration: { max: 0.01 } } }, { actor: 'operator:test' })
    const events: SimEvent[] = []
    const device = startDevice(bundle!, { broker, ratePerSecond: 10 }, events)
    await waitFor(() => device.stats().insights >= 1, 10_000, 'an insight')
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
    await waitFor(() => telemetry.readings('sim-0004').length >= 5, 5000, '5 readings')

    const aedesClient = (gatehouse.broker.aedes as unknown as { clients: Record<string, { close(): void }> }).clients['sim-0004']
    aedesClient?.close()
    await waitFor(() => events.some((e) => e.type === 'disconnected'), 2000, 'the disconnect')
    await waitFor(
      () => device.stats().reconnects === 1,
      5000,
      () => `one reconnect; have ${device.stats().reconnects}`,
    )
    expect(gatehouse.broker.isConnected('sim-0004')).toBe(true)

    // the readings made while it was away arrive after the reconnect; none is missing
    const sentByNow = device.stats().sent
    await waitFor(() => new Set(seqs(telemetry.readings('sim-0004'))).size >= sentByNow, 5000, `${sentByNow} distinct readings`)
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
    await gatehouse.control.authority.disableDevice('sim-0005', 'operator:test')
    const device = startDevice(bundle!, { broker, ratePerSecond: 5, backoff: { minMs: 100, maxMs: 400 } })
    await waitFor(() => device.stats().errors >= 3, 5000, '3 refused attempts')
    expect(device.stats().lastError).toMatch(/GH_SIM_CONNECT_FAILED: CONNACK 5/)
    expect(device.stats().connected).toBe(false)
    await gatehouse.control.authority.enableDevice('sim-0005', 'operator:test')
    expect(await device.whenConnected(5000)).toBe(true)
    // what it measured while refused is delivered now
    await waitFor(() => device.stats().queued === 0, 3000, 'the queue drained')
  })
})
