import type { IPublishPacket } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import type { DevicePublish } from '../../../broker/index.ts'
import { startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

const A = 'pump-7'
const SERIAL_A = 'aa01'

async function connectedDevice(limits?: Parameters<typeof startCore>[0]) {
  const h = await startCore(limits)
  h.device(A, SERIAL_A)
  const published: DevicePublish[] = []
  h.core.onDevicePublish((m) => published.push(m))
  const { client, connack } = await h.connect({ clientId: A, serial: SERIAL_A })
  expect(connack).toMatchObject({ returnCode: 0 })
  return { h, client, published }
}

describe('authorize-subscribe hook', () => {
  it('grants its own settings and insights and answers 0x80 for everything else', async () => {
    const { client } = await connectedDevice()
    const filters = [
      'devices/pump-7/settings',
      'devices/pump-7/insights',
      'devices/B/#',
      'devices/+/settings',
      '#',
      '$SYS/#',
      'devices/pump-7/#',
      'devices/pump-7/telemetry',
    ]
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) })
    const suback = await client.next()
    expect(suback).toMatchObject({ cmd: 'suback', messageId: 1, granted: [1, 1, 128, 128, 128, 128, 128, 128] })
    expect(client.isClosed()).toBe(false)
  })

  it('reports granted subscriptions to onDeviceSubscribe, without the refused ones', async () => {
    const { h, client } = await connectedDevice()
    const seen: unknown[] = []
    h.core.onDeviceSubscribe((s) => seen.push(s))
    client.send({
      cmd: 'subscribe',
      messageId: 2,
      subscriptions: [
        { topic: 'devices/pump-7/settings', qos: 1 },
        { topic: '#', qos: 0 },
      ],
    })
    await client.next()
    expect(seen).toEqual([
      {
        deviceId: A,
        sessionId: expect.any(Number),
        filters: [{ topic: 'devices/pump-7/settings', qos: 1 }],
        certificate: { serial: expect.any(String), notBefore: expect.any(Date), notAfter: expect.any(Date) },
      },
    ])
  })

  it('delivers what the broker publishes to devices/{id}/settings', async () => {
    const { h, client } = await connectedDevice()
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/pump-7/settings', qos: 0 }] })
    await client.next()
    await h.core.publishToDevice('devices/pump-7/settings', '{"interval":5}', { qos: 0 })
    const msg = (await client.next()) as IPublishPacket
    expect(msg).toMatchObject({ cmd: 'publish', topic: 'devices/pump-7/settings' })
    expect(msg.payload.toString()).toBe('{"interval":5}')
  })

  it('publishToDevice refuses topics that are not broker-to-device', async () => {
    const { h } = await connectedDevice()
    for (const topic of ['devices/pump-7/telemetry', 'devices/+/settings', '$SYS/x', 'devices/pump-7/settings/reported']) {
      await expect(h.core.publishToDevice(topic, 'x')).rejects.toMatchObject({ code: 'GH_BROKER_TOPIC_INVALID' })
    }
  })
})

describe('authorize-publish hook', () => {
  it('accepts telemetry and settings/reported, clears retain and reports them to onDevicePublish', async () => {
    const { h, client, published } = await connectedDevice()
    const retained: boolean[] = []
    h.core.aedes.on('publish', (p, c) => void (c ? retained.push(p.retain) : undefined))
    client.send({
      cmd: 'publish',
      topic: 'devices/pump-7/telemetry/engine',
      payload: Buffer.from('21.5'),
      qos: 0,
      retain: true,
      dup: false,
    })
    client.send({
      cmd: 'publish',
      topic: 'devices/pump-7/settings/reported',
      payload: Buffer.from('{}'),
      qos: 1,
      messageId: 7,
      retain: false,
      dup: false,
    })
    expect(await client.next()).toMatchObject({ cmd: 'puback', messageId: 7 })
    await waitFor(() => published.length === 2, 2000, 'two publishes')
    expect(published.map((p) => [p.kind, p.subtopic, p.payload.toString()])).toEqual([
      ['telemetry', ['engine'], '21.5'],
      ['settings.reported', [], '{}'],
    ])
    expect(retained).toEqual([false, false])
    expect(h.directory.audits).toEqual([])
  })

  it('reports each publish with its own topic when one connection alternates between topics (the topic is parsed once per change)', async () => {
    const { client, published } = await connectedDevice()
    const topics = [
      'devices/pump-7/telemetry/engine',
      'devices/pump-7/telemetry/engine',
      'devices/pump-7/settings/reported',
      'devices/pump-7/telemetry',
      'devices/pump-7/telemetry/engine/rpm',
      'devices/pump-7/telemetry/engine',
    ]
    for (const topic of topics) client.send({ cmd: 'publish', topic, payload: Buffer.from('1'), qos: 0, retain: false, dup: false })
    await waitFor(() => published.length === topics.length, 2000, 'the publishes')
    expect(published.map((p) => [p.topic, p.kind, p.subtopic])).toEqual([
      [topics[0], 'telemetry', ['engine']],
      [topics[1], 'telemetry', ['engine']],
      [topics[2], 'settings.reported', []],
      [topics[3], 'telemetry', []],
      [topics[4], 'telemetry', ['engine', 'rpm']],
      [topics[5], 'telemetry', ['engine']],
    ])
  })

  it('closes the connection on a publish outside its topics, delivers nothing, audits at a bounded rate', async () => {
    const { h, client, published } = await connectedDevice()
    client.send({ cmd: 'publish', topic: 'devices/B/telemetry', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
    await client.closed
    expect(published).toEqual([])
    expect(h.directory.auditsFor('publish.refused')).toEqual([
      expect.objectContaining({
        subject: A,
        details: expect.objectContaining({ topic: 'devices/B/telemetry', reason: 'not-permitted', suppressed: 0 }),
      }),
    ])
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'publish refused', level: 30, deviceId: A, topic: 'devices/B/telemetry' }))

    // again within the interval: suppressed; after it: one record with the suppressed count
    for (let i = 0; i < 2; i++) {
      const again = await h.connect({ clientId: A, serial: SERIAL_A })
      again.client.send({ cmd: 'publish', topic: 'devices/pump-7/settings', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
      await again.client.closed
    }
    expect(h.directory.auditsFor('publish.refused')).toHaveLength(1)
    h.clock.advance('61s')
    const later = await h.connect({ clientId: A, serial: SERIAL_A })
    later.client.send({ cmd: 'publish', topic: '$SYS/x', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
    await later.client.closed
    expect(h.directory.auditsFor('publish.refused').map((a) => a.details?.suppressed)).toEqual([0, 2])
    // payloads are never logged
    expect(JSON.stringify(h.logs)).not.toContain('"payload"')
  })

  it('disconnects a device over its message rate, audited once per episode, and lets it back after refill', async () => {
    const { h, client, published } = await connectedDevice({ limits: { publishRate: { ratePerSecond: 1, burst: 3 } } })
    for (let i = 0; i < 5; i++) {
      client.send({ cmd: 'publish', topic: 'devices/pump-7/telemetry', payload: Buffer.from(String(i)), qos: 0, retain: false, dup: false })
    }
    await client.closed
    expect(published.map((p) => p.payload.toString())).toEqual(['0', '1', '2'])
    expect(h.directory.auditsFor('device.throttled')).toEqual([
      expect.objectContaining({ subject: A, details: expect.objectContaining({ limit: 'messages', ratePerSecond: 1, burst: 3 }) }),
    ])
    // reconnecting does not refill the bucket
    const again = await h.connect({ clientId: A, serial: SERIAL_A })
    again.client.send({ cmd: 'publish', topic: 'devices/pump-7/telemetry', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
    await again.client.closed
    expect(h.directory.auditsFor('device.throttled')).toHaveLength(1)
    h.clock.advance('2s')
    const refilled = await h.connect({ clientId: A, serial: SERIAL_A })
    refilled.client.send({
      cmd: 'publish',
      topic: 'devices/pump-7/telemetry',
      payload: Buffer.from('ok'),
      qos: 1,
      messageId: 1,
      retain: false,
      dup: false,
    })
    expect(await refilled.client.next()).toMatchObject({ cmd: 'puback' })
  })

  it('disconnects a device over its byte rate', async () => {
    const { h, client } = await connectedDevice({
      limits: { maxPacketBytes: 1024, publishBytesRate: { ratePerSecond: 100, burst: 2000 } },
    })
    for (let i = 0; i < 3; i++) {
      client.send({ cmd: 'publish', topic: 'devices/pump-7/telemetry', payload: Buffer.alloc(900), qos: 0, retain: false, dup: false })
    }
    await client.closed
    expect(h.directory.auditsFor('device.throttled')[0]?.details).toMatchObject({ limit: 'bytes' })
  })

  it('publishes the will of a device that vanished, without retain', async () => {
    const h = await startCore()
    h.device(A, SERIAL_A)
    const published: DevicePublish[] = []
    h.core.onDevicePublish((m) => published.push(m))
    const { client } = await h.connect({
      clientId: A,
      serial: SERIAL_A,
      will: { topic: 'devices/pump-7/telemetry/status', payload: Buffer.from('offline'), qos: 0, retain: true },
    })
    client.end() // no DISCONNECT: the will is due
    await waitFor(() => published.length === 1, 2000, 'will')
    expect(published[0]).toMatchObject({ topic: 'devices/pump-7/telemetry/status' })
  })

  it('drops the will of a device whose session the broker closed on revocation', async () => {
    const h = await startCore()
    h.device(A, SERIAL_A)
    const published: DevicePublish[] = []
    h.core.onDevicePublish((m) => published.push(m))
    const { client } = await h.connect({
      clientId: A,
      serial: SERIAL_A,
      will: { topic: 'devices/pump-7/telemetry/status', payload: Buffer.from('offline'), qos: 0, retain: false },
    })
    h.directory.revokeDevice(A)
    await client.closed
    // the marker: another device's will, due after A's would have been
    h.device('pump-8', 'bb01')
    const other = await h.connect({
      clientId: 'pump-8',
      serial: 'bb01',
      will: { topic: 'devices/pump-8/telemetry/status', payload: Buffer.from('offline'), qos: 0, retain: false },
    })
    other.client.end()
    await waitFor(() => published.length > 0, 2000, 'the marker will')
    expect(published.map((m) => m.topic)).toEqual(['devices/pump-8/telemetry/status'])
  })
})
