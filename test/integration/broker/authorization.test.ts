import { beforeAll, describe, expect, it } from 'vitest'
import type { DevicePublish } from '../../../broker/index.ts'
import type { BrokerLimitsInput } from '../../../broker/limits.ts'
import { startBroker } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { makeBrokerPki, type BrokerPki } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'

let pki: BrokerPki

beforeAll(async () => {
  pki = await makeBrokerPki()
})

async function twoDevices(limits?: BrokerLimitsInput) {
  const h = await startBroker(pki.serverTls, limits ? { limits } : {})
  const [a, b] = await Promise.all([pki.device('A'), pki.device('B')])
  h.directory.addCertificate('A', a.serial)
  h.directory.addCertificate('B', b.serial)
  return { h, a, b }
}

describe('topic authorization over TLS', () => {
  it('answers SUBACK 128 for devices/B/#, devices/+/settings and #', async () => {
    const { h, a } = await twoDevices()
    const client = await connectDevice(h.port, a)
    // mqtt.js rejects a SUBACK with failures and carries the packet on the error
    const err = await client.subscribeAsync(['devices/B/#', 'devices/+/settings', '#', 'devices/A/settings'], { qos: 1 }).then(
      () => null,
      (e: { packet?: { granted?: number[] } }) => e,
    )
    expect(err?.packet?.granted).toEqual([128, 128, 128, 1])
    // the marker: a later SUBSCRIBE is still answered on the same connection
    await client.subscribeAsync('devices/A/settings', { qos: 1 })
    expect(client.connected).toBe(true)
    expect(h.broker.isConnected('A')).toBe(true)
  })

  it('closes A when it publishes to devices/B/telemetry, and B receives nothing', async () => {
    const { h, a, b } = await twoDevices()
    const published: DevicePublish[] = []
    h.broker.onDevicePublish((m) => published.push(m))
    const clientB = await connectDevice(h.port, b)
    const got: string[] = []
    clientB.on('message', (topic) => got.push(topic))
    await clientB.subscribeAsync('devices/B/settings', { qos: 0 })
    const clientA = await connectDevice(h.port, a)
    const closed = closedWithin(clientA)
    clientA.publish('devices/B/telemetry', 'spoofed', { qos: 0 })
    clientA.publish('devices/B/settings', 'spoofed', { qos: 0 })
    await closed
    // the marker: a message to B's settings after A is gone; A's, had they passed, would have come first
    await h.broker.publishToDevice('devices/B/settings', 'marker', { qos: 0 })
    await waitFor(() => got.length > 0, 2000, 'the marker')
    expect(published).toEqual([])
    expect(got).toEqual(['devices/B/settings'])
    expect(h.directory.auditsFor('publish.refused')).toEqual([
      expect.objectContaining({
        subject: 'A',
        details: expect.objectContaining({ topic: 'devices/B/telemetry', reason: 'not-permitted' }),
      }),
    ])
  })

  it('closes a device within 1 s of its revocation and refuses it afterwards', async () => {
    const { h, a, b } = await twoDevices()
    const clientA = await connectDevice(h.port, a)
    const clientB = await connectDevice(h.port, b)
    const closed = closedWithin(clientA)
    h.directory.revokeDevice('A') // store first, then the event, as the control plane does
    const ms = await closed
    expect(ms).toBeLessThan(1000)
    expect(h.broker.isConnected('A')).toBe(false)
    expect(clientB.connected).toBe(true)
    expect(h.directory.auditsFor('session.closed')).toEqual([
      expect.objectContaining({ subject: 'A', details: expect.objectContaining({ reason: 'device.revoked', serial: a.serial }) }),
    ])
    const again = await attemptConnect(h.port, a)
    expect(again.connack).toBe(5)
    expect(h.directory.auditsFor('connect.refused')[0]?.details).toMatchObject({ reason: 'revoked' })
  })

  it('closes a device whose live certificate is revoked, within 1 s', async () => {
    const { h, a } = await twoDevices()
    const clientA = await connectDevice(h.port, a)
    const closed = closedWithin(clientA)
    h.directory.revokeCertificate(a.serial)
    expect(await closed).toBeLessThan(1000)
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'certificate.revoked' })
  })

  it('disconnects a device over its publish rate and audits it once', async () => {
    const { h, a } = await twoDevices({ publishRate: { ratePerSecond: 1, burst: 5 } })
    const published: DevicePublish[] = []
    h.broker.onDevicePublish((m) => published.push(m))
    const clientA = await connectDevice(h.port, a)
    const closed = closedWithin(clientA)
    for (let i = 0; i < 20; i++) clientA.publish('devices/A/telemetry', String(i), { qos: 0 })
    await closed
    await waitFor(() => published.length >= 5, 2000, 'burst')
    expect(published.length).toBe(5)
    expect(h.directory.auditsFor('device.throttled')).toHaveLength(1)
  })
})
