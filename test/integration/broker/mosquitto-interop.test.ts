import { beforeAll, describe, expect, it } from 'vitest'
import type { DevicePublish } from '../../../broker/index.ts'
import { startBroker } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { makeBrokerPki, type BrokerPki } from '../../helpers/broker-pki.ts'
import { requireMosquittoClients, runMosquitto } from '../../helpers/mqtt-clients.ts'

let pki: BrokerPki

beforeAll(async () => {
  requireMosquittoClients() // fails with a clear message, never skips: CI installs mosquitto-clients
  pki = await makeBrokerPki()
})

describe('interop with Debian mosquitto clients (MQTT 3.1.1)', () => {
  it('mosquitto_sub as a device receives its settings message', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('sensor-1')
    h.directory.addCertificate('sensor-1', dev.serial)
    let subscribed = false
    h.broker.onDeviceSubscribe((s) => void (subscribed ||= s.deviceId === 'sensor-1'))
    const sub = runMosquitto('mosquitto_sub', h.port, dev, ['-t', 'devices/sensor-1/settings', '-q', '1', '-C', '1', '-W', '20'])
    await waitFor(() => subscribed || sub.child.exitCode !== null, 15_000, 'mosquitto_sub to subscribe')
    expect(subscribed).toBe(true)
    await h.broker.publishToDevice('devices/sensor-1/settings', '{"interval":30}', { qos: 1 })
    const { code, stdout, stderr } = await sub.exited
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(stdout.trim()).toBe('{"interval":30}')
  })

  it('mosquitto_pub as a device publishes telemetry that arrives', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('sensor-2')
    h.directory.addCertificate('sensor-2', dev.serial)
    const published: DevicePublish[] = []
    h.broker.onDevicePublish((m) => published.push(m))
    const pub = runMosquitto('mosquitto_pub', h.port, dev, ['-t', 'devices/sensor-2/telemetry/env', '-q', '1', '-m', '{"t":19.5}'])
    const { code, stderr } = await pub.exited
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    await waitFor(() => published.length === 1, 5000, 'telemetry')
    expect(published[0]).toMatchObject({ deviceId: 'sensor-2', kind: 'telemetry', subtopic: ['env'] })
    expect(published[0]?.payload.toString()).toBe('{"t":19.5}')
  })

  it('mosquitto_sub is refused a filter outside its topics', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('sensor-3')
    h.directory.addCertificate('sensor-3', dev.serial)
    const sub = runMosquitto('mosquitto_sub', h.port, dev, ['-t', 'devices/+/settings', '-q', '1', '-C', '1', '-W', '3'])
    // mosquitto_sub reads SUBACK 0x80, reports it and exits (with status 0 in 2.0.11)
    const { stderr } = await sub.exited
    expect(stderr).toMatch(/All subscription requests were denied/)
    await waitFor(() => !h.broker.isConnected('sensor-3'), 5000, 'mosquitto_sub to go')
  })
})
