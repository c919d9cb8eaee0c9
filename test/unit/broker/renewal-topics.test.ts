import type { IPublishPacket } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { attachSettingsDelivery, type DevicePublish } from '../../../broker/index.ts'
import type { RenewalRequest } from '../../../broker/create-mqtt-core.ts'
import { createRecordingLogger, startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

async function connectedDevice() {
  const h = await startCore()
  h.device('pump-7', 'aa01')
  const { client, connack } = await h.connect({ clientId: 'pump-7', serial: 'aa01', remoteAddress: '192.0.2.9' })
  expect(connack).toMatchObject({ returnCode: 0 })
  return { h, client }
}

describe('device renewal topics', () => {
  it("lets a device subscribe its renewal/response, and no other device's", async () => {
    const { client } = await connectedDevice()
    client.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [
        'devices/pump-7/renewal/response',
        'devices/pump-8/renewal/response',
        'devices/pump-7/renewal/request',
        'devices/pump-7/renewal/#',
      ].map((topic) => ({ topic, qos: 1 as const })),
    })
    expect(await client.next()).toMatchObject({ cmd: 'suback', granted: [1, 0x80, 0x80, 0x80] })
  })

  it('hands renewal/request to onRenewalRequest (with the session and its certificate) and to onDevicePublish as kind renewal.request', async () => {
    const { h, client } = await connectedDevice()
    const renewals: RenewalRequest[] = []
    const publishes: DevicePublish[] = []
    h.core.onRenewalRequest((r) => renewals.push(r))
    h.core.onDevicePublish((m) => publishes.push(m))
    client.send({
      cmd: 'publish',
      topic: 'devices/pump-7/renewal/request',
      payload: Buffer.from('{"csr":"x"}'),
      qos: 1,
      messageId: 3,
      retain: true,
      dup: false,
    })
    expect(await client.next()).toMatchObject({ cmd: 'puback', messageId: 3 })
    await waitFor(() => renewals.length === 1 && publishes.length === 1, 2000, 'renewal request')
    expect(renewals[0]).toMatchObject({ deviceId: 'pump-7', serial: 'aa01', remoteAddress: '192.0.2.9', sessionId: expect.any(Number) })
    expect(renewals[0]?.payload.toString()).toBe('{"csr":"x"}')
    expect(publishes[0]).toMatchObject({ kind: 'renewal.request', topic: 'devices/pump-7/renewal/request' })
    expect(h.core.isSessionLive(renewals[0]!.sessionId)).toBe(true)
  })

  it('replyToSession answers on devices/{id}/renewal/response while the session lives, and not after a takeover', async () => {
    const { h, client } = await connectedDevice()
    const renewals: RenewalRequest[] = []
    h.core.onRenewalRequest((r) => renewals.push(r))
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/pump-7/renewal/response', qos: 1 }] })
    await client.next()
    client.send({ cmd: 'publish', topic: 'devices/pump-7/renewal/request', payload: Buffer.from('{}'), qos: 0, retain: false, dup: false })
    await waitFor(() => renewals.length === 1, 2000, 'renewal request')
    const sessionId = renewals[0]!.sessionId
    expect(await h.core.replyToSession(sessionId, '{"ok":true}')).toBe(true)
    const got = (await client.next()) as IPublishPacket
    expect(got).toMatchObject({ cmd: 'publish', topic: 'devices/pump-7/renewal/response', qos: 1, retain: false })

    const again = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    expect(again.connack).toMatchObject({ returnCode: 0 })
    await client.closed
    expect(h.core.isSessionLive(sessionId)).toBe(false)
    expect(await h.core.replyToSession(sessionId, '{"ok":true}')).toBe(false)
  })

  it('publishToDevice accepts renewal/response', async () => {
    const { h, client } = await connectedDevice()
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/pump-7/renewal/response', qos: 0 }] })
    await client.next()
    await h.core.publishToDevice('devices/pump-7/renewal/response', '{"ok":false}', { qos: 0 })
    expect(await client.next()).toMatchObject({ cmd: 'publish', topic: 'devices/pump-7/renewal/response' })
    await expect(h.core.publishToDevice('devices/pump-7/renewal/request', 'x')).rejects.toMatchObject({ code: 'GH_BROKER_TOPIC_INVALID' })
  })

  it('settings delivery ignores renewal requests', async () => {
    const { h, client } = await connectedDevice()
    const reports: unknown[] = []
    const { log } = createRecordingLogger()
    attachSettingsDelivery(h.core, {
      source: { current: async () => undefined, report: (deviceId, payload) => void reports.push([deviceId, payload]) },
      events: h.directory,
      log,
    })
    client.send({
      cmd: 'publish',
      topic: 'devices/pump-7/renewal/request',
      payload: Buffer.from('{"csr":"x"}'),
      qos: 1,
      messageId: 1,
      retain: false,
      dup: false,
    })
    client.send({
      cmd: 'publish',
      topic: 'devices/pump-7/settings/reported',
      payload: Buffer.from('{"version":1}'),
      qos: 1,
      messageId: 2,
      retain: false,
      dup: false,
    })
    // the report is the marker: sent after the renewal request, it is handled after it
    await waitFor(() => reports.length === 1, 2000, 'the settings report')
    expect(reports).toEqual([['pump-7', { version: 1 }]])
  })
})
