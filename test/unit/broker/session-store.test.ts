import type { IPublishPacket, Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { startCore, type CoreHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { PacketClient } from '../../helpers/mqtt-packet-stream.ts'

const A = 'pump-7'
const SERIAL_A = 'aa01'
const INSIGHTS = `devices/${A}/insights`

async function persistentDevice(h: CoreHarness): Promise<{ client: PacketClient; connack: Packet }> {
  const connected = await h.connect({ clientId: A, serial: SERIAL_A, clean: false })
  expect(connected.connack).toMatchObject({ returnCode: 0 })
  return connected
}

async function subscribe(client: PacketClient, topic: string): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] })
  await waitFor(() => client.received.some((p) => p.cmd === 'suback'), 2000, 'SUBACK')
}

async function disconnect(h: CoreHarness, client: PacketClient): Promise<void> {
  client.end()
  await client.closed
  await waitFor(() => !h.core.isConnected(A), 2000, 'the broker to see the disconnect')
}

const insights = (client: PacketClient) =>
  client.received.filter((p): p is IPublishPacket => p.cmd === 'publish' && p.topic === INSIGHTS).map((p) => p.payload.toString())

/** Publishes n QoS 1 messages to the device's insights topic (the broker's own device-bound topic). */
async function publishInsights(h: CoreHarness, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) await h.core.publishToDevice(INSIGHTS, `m${i}`, { qos: 1 })
}

describe('bounded persistent sessions', () => {
  it('keeps at most maxQueuedMessages for a clean=false device that never PUBACKs, dropping the oldest, also while offline', async () => {
    const h = await startCore({ limits: { maxQueuedMessages: 20 } })
    h.device(A, SERIAL_A)
    const { client } = await persistentDevice(h)
    await subscribe(client, INSIGHTS)
    await publishInsights(h, 0, 60) // online, never acknowledged
    await waitFor(() => insights(client).length === 60, 2000, '60 deliveries')
    await disconnect(h, client)
    await publishInsights(h, 60, 60) // offline

    const { client: back, connack } = await persistentDevice(h)
    expect(connack).toMatchObject({ sessionPresent: true })
    // the queue replays in order: anything older would arrive before the newest one
    await waitFor(() => insights(back).includes('m119'), 2000, 'the newest message')
    expect(insights(back)).toEqual(Array.from({ length: 20 }, (_, i) => `m${100 + i}`))
    expect(h.core.sessionStats()).toMatchObject({ droppedMessages: 100 })
    expect(h.logs.filter((r) => r.msg === 'session queue full: dropped the oldest messages')).toEqual([
      expect.objectContaining({ clientId: A, code: 'GH_BROKER_SESSION_FULL', maxQueuedMessages: 20 }),
    ])
  })

  it('bounds the queue by bytes too', async () => {
    const h = await startCore({ limits: { maxPacketBytes: 4096, maxQueuedBytes: 10_000 } })
    h.device(A, SERIAL_A)
    const { client } = await persistentDevice(h)
    await subscribe(client, INSIGHTS)
    await disconnect(h, client)
    for (let i = 0; i < 20; i++) await h.core.publishToDevice(INSIGHTS, 'x'.repeat(3000), { qos: 1 })
    expect(h.core.sessionStats().queuedBytes).toBeLessThanOrEqual(10_000)
    expect(h.core.sessionStats().queuedMessages).toBe(3)
  })

  it('forgets what a device acknowledged', async () => {
    const h = await startCore()
    h.device(A, SERIAL_A)
    const { client } = await persistentDevice(h)
    await subscribe(client, INSIGHTS)
    await publishInsights(h, 0, 10)
    await waitFor(() => insights(client).length === 10, 2000, '10 deliveries')
    for (const p of client.received) if (p.cmd === 'publish') client.send({ cmd: 'puback', messageId: p.messageId as number })
    await waitFor(() => h.core.sessionStats().queuedMessages === 0, 2000, 'the acks')
    expect(h.core.sessionStats().droppedMessages).toBe(0)
  })

  it('keeps at most maxInflightInbound unreleased inbound QoS 2 messages per device, across reconnects', async () => {
    const h = await startCore({ limits: { maxInflightInbound: 10 } })
    h.device(A, SERIAL_A)
    const qos2 = (messageId: number): Packet => ({
      cmd: 'publish',
      topic: `devices/${A}/telemetry`,
      payload: Buffer.from('t'),
      qos: 2,
      messageId,
      retain: false,
      dup: false,
    })
    const first = (await persistentDevice(h)).client
    for (let id = 1; id <= 10; id++) first.send(qos2(id))
    await waitFor(() => first.received.filter((p) => p.cmd === 'pubrec').length === 10, 2000, '10 PUBRECs')
    await disconnect(h, first) // never sent PUBREL

    const second = (await persistentDevice(h)).client
    second.send(qos2(3)) // a retransmission of a stored one is answered
    await waitFor(() => second.received.some((p) => p.cmd === 'pubrec'), 2000, 'PUBREC of the retransmission')
    second.send(qos2(11)) // one more new one is refused
    await second.closed
    expect(h.core.sessionStats().refusedInbound).toBe(1)
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: 'inbound QoS 2 limit reached: connection closed', clientId: A, code: 'GH_BROKER_SESSION_FULL' }),
    )

    const third = (await persistentDevice(h)).client // releasing frees the slot
    third.send({ cmd: 'pubrel', messageId: 1 })
    await waitFor(() => third.received.some((p) => p.cmd === 'pubcomp'), 2000, 'PUBCOMP')
    third.send(qos2(12))
    await waitFor(() => third.received.some((p) => p.cmd === 'pubrec'), 2000, 'PUBREC of a new one')
    expect(third.isClosed()).toBe(false)
  })

  it.each(['disableDevice', 'revokeDevice'] as const)(
    '%s drops the stored session: subscriptions, queue and inbound QoS 2',
    async (action) => {
      const h = await startCore()
      h.device(A, SERIAL_A)
      const published: unknown[] = []
      h.core.onDevicePublish((m) => published.push(m))
      const { client } = await persistentDevice(h)
      await subscribe(client, INSIGHTS)
      client.send({
        cmd: 'publish',
        topic: `devices/${A}/telemetry`,
        payload: Buffer.from('t'),
        qos: 2,
        messageId: 5,
        retain: false,
        dup: false,
      })
      await waitFor(() => client.received.some((p) => p.cmd === 'pubrec'), 2000, 'PUBREC')
      await disconnect(h, client)
      await publishInsights(h, 0, 5)

      h.directory[action](A)
      // back in service under a new certificate: nothing of the old session is left
      h.directory.setDeviceStatus(A, 'active')
      h.directory.addCertificate(A, 'bb02')
      const { client: back, connack } = await h.connect({ clientId: A, serial: 'bb02', clean: false })
      expect(connack).toMatchObject({ returnCode: 0, sessionPresent: false })
      await publishInsights(h, 5, 1) // not subscribed any more: not queued, not delivered
      // the stored inbound QoS 2 is gone too: the same messageId is a new message, published again
      back.send({
        cmd: 'publish',
        topic: `devices/${A}/telemetry`,
        payload: Buffer.from('t'),
        qos: 2,
        messageId: 5,
        retain: false,
        dup: false,
      })
      await waitFor(() => published.length === 2, 2000, 'the second publish')
      expect(insights(back)).toEqual([])
      expect(h.core.sessionStats().queuedMessages).toBe(0)
    },
  )
})
