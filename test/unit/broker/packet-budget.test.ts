import mqttPacket, { type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { clockMs, systemClock } from '../../../certs/index.ts'
import { createFrameScanner } from '../../../broker/frame-size-guard.ts'
import { startCore, type CoreHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { fixedClock, type FixedClock } from '../../helpers/clock.ts'
import type { PacketClient } from '../../helpers/mqtt-packet-stream.ts'

const A = 'pump-7'
const SERIAL_A = 'aa01'

async function connected(h: CoreHarness, clean = true): Promise<PacketClient> {
  const { client, connack } = await h.connect({ clientId: A, serial: SERIAL_A, clean })
  expect(connack).toMatchObject({ returnCode: 0 })
  return client
}

/** Sends `count` packets made by `make(i)`; resolves when the connection closed or `count` answers came back. */
async function flood(client: PacketClient, count: number, make: (i: number) => Packet, answer: string): Promise<number> {
  const before = client.received.length
  for (let i = 0; i < count; i++) client.send(make(i))
  const answers = () => client.received.slice(before).filter((p) => p.cmd === answer).length
  await Promise.race([client.closed, waitFor(() => answers() === count, 5000, `${count} ${answer}`)])
  return answers()
}

describe('createFrameScanner frame listener', () => {
  it('reports each frame type from its header, whole or split at any byte', () => {
    const frames = Buffer.concat([
      mqttPacket.generate({ cmd: 'pingreq' }),
      mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 1 }] }),
      mqttPacket.generate({ cmd: 'puback', messageId: 3 }),
    ])
    for (const chunks of [[frames], [...frames].map((b) => Uint8Array.of(b))]) {
      const types: number[] = []
      const s = createFrameScanner(1024, (t) => (types.push(t), null))
      for (const c of chunks) expect(s.feed(c)).toBeNull()
      expect(types).toEqual([12, 8, 4])
    }
  })

  it('stops at the first frame the listener refuses', () => {
    const s = createFrameScanner(1024, (t) => (t === 10 ? { kind: 'over-budget', packetType: t } : null))
    const unsub = mqttPacket.generate({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a'] })
    expect(s.feed(mqttPacket.generate({ cmd: 'pingreq' }))).toBeNull()
    expect(s.feed(unsub)).toEqual({ kind: 'over-budget', packetType: 10 })
  })
})

describe('per-device packet budget (limits.packetRate)', () => {
  it('closes a device that floods SUBSCRIBE after its burst, audited as device.throttled', async () => {
    const h = await startCore()
    h.device(A, SERIAL_A)
    const client = await connected(h)
    const subscribe = (i: number): Packet => ({
      cmd: 'subscribe',
      messageId: i + 1,
      subscriptions: [{ topic: `devices/${A}/settings`, qos: 1 }],
    })
    const subacks = await flood(client, 1000, subscribe, 'suback')
    expect(client.isClosed()).toBe(true)
    expect(subacks).toBeLessThanOrEqual(300) // the default burst
    expect(h.directory.auditsFor('device.throttled')).toEqual([
      expect.objectContaining({ subject: A, details: expect.objectContaining({ limit: 'packets', packetType: 'subscribe', burst: 300 }) }),
    ])
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'device throttled', code: 'GH_BROKER_PACKET_RATE_LIMITED', deviceId: A }))
  })

  it('counts PINGREQ, UNSUBSCRIBE and acks in the same budget, which reconnecting does not refill', async () => {
    const h = await startCore({ limits: { packetRate: { ratePerSecond: 1, burst: 13 } } })
    h.device(A, SERIAL_A)
    const first = await connected(h)
    expect(await flood(first, 6, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(6)
    expect(
      await flood(first, 4, (i) => ({ cmd: 'unsubscribe', messageId: i + 1, unsubscriptions: [`devices/${A}/settings`] }), 'unsuback'),
    ).toBe(4)
    first.send({ cmd: 'puback', messageId: 77 })
    expect(await flood(first, 1, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(1) // the PUBACK was read before it
    first.end()
    await first.closed

    // 12 of 13 tokens used (the clock stands still): one more packet passes, the next closes the connection
    const second = await connected(h)
    expect(await flood(second, 1, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(1)
    expect(await flood(second, 1, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(0)
    expect(second.isClosed()).toBe(true)
    expect(h.directory.auditsFor('device.throttled')[0]?.details).toMatchObject({ limit: 'packets', packetType: 'pingreq' })
  })

  it('default limits: a full publishRate burst at QoS 2 (PUBLISH + PUBREL), subscribes, pings and acks pass', async () => {
    const h = await startCore() // the fixed clock never refills: everything below comes out of the bursts
    h.device(A, SERIAL_A)
    const client = await connected(h)
    const subacks = await flood(
      client,
      3,
      (i) => ({
        cmd: 'subscribe',
        messageId: i + 1,
        subscriptions: [{ topic: `devices/${A}/${['settings', 'insights', 'renewal/response'][i]}`, qos: 1 }],
      }),
      'suback',
    )
    expect(subacks).toBe(3)
    const qos2 = (i: number): Packet => ({
      cmd: 'publish',
      topic: `devices/${A}/telemetry`,
      payload: Buffer.from('{"t":1}'),
      qos: 2,
      messageId: i + 1,
      retain: false,
      dup: false,
    })
    expect(await flood(client, 100, qos2, 'pubrec')).toBe(100)
    expect(await flood(client, 100, (i) => ({ cmd: 'pubrel', messageId: i + 1 }), 'pubcomp')).toBe(100)
    await h.core.publishToDevice(`devices/${A}/insights`, 'hello', { qos: 1 })
    await waitFor(() => client.received.some((p) => p.cmd === 'publish'), 2000, 'a message to the device')
    client.send({ cmd: 'puback', messageId: (client.received.find((p) => p.cmd === 'publish') as { messageId: number }).messageId })
    expect(await flood(client, 10, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(10)
    expect(client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('device.throttled')).toEqual([])
  })

  it('acknowledgements of messages the broker delivered cost nothing; acknowledgements nobody is owed cost a token each', async () => {
    const h = await startCore({ limits: { packetRate: { ratePerSecond: 1, burst: 10 } } }) // the clock never refills
    h.device(A, SERIAL_A)
    const client = await connected(h)
    expect(
      await flood(
        client,
        1,
        () => ({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${A}/insights`, qos: 1 }] }),
        'suback',
      ),
    ).toBe(1)
    // five times the burst, at QoS 1: a reader (an app on a fleet's telemetry) acks every one and stays
    for (let i = 0; i < 50; i++) await h.core.publishToDevice(`devices/${A}/insights`, `m${i}`, { qos: 1 })
    const delivered = () => client.received.filter((p) => p.cmd === 'publish') as { messageId: number }[]
    await waitFor(() => delivered().length === 50, 5000, '50 messages to the device')
    for (const p of delivered()) client.send({ cmd: 'puback', messageId: p.messageId })
    expect(await flood(client, 1, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(1)
    expect(client.isClosed()).toBe(false)
    // 2 of 10 tokens used: acks nobody is owed (a PUBACK flood) are packets like any other
    expect(await flood(client, 20, (i) => ({ cmd: 'puback', messageId: 1000 + i }), 'none')).toBe(0)
    expect(client.isClosed()).toBe(true)
    expect(h.directory.auditsFor('device.throttled')[0]?.details).toMatchObject({ limit: 'packets', packetType: 'puback' })
  })

  it('refills with time: a device within its rate is never closed', async () => {
    const h = await startCore({ limits: { packetRate: { ratePerSecond: 10, burst: 5 } } })
    h.device(A, SERIAL_A)
    const client = await connected(h)
    for (let second = 0; second < 20; second++) {
      expect(await flood(client, 5, () => ({ cmd: 'pingreq' }), 'pingresp')).toBe(5)
      h.clock.advance(1000)
    }
    expect(client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('device.throttled')).toEqual([])
  })
})

describe("the packet's one clock read", () => {
  it('makes no Date per packet when the clock has nowMs (systemClock does), and every listener gets that read', async () => {
    const base = fixedClock('2026-01-01T00:00:00Z')
    let dates = 0
    let reads = 0
    const clock: FixedClock = {
      ...base,
      now: () => (dates++, base.now()),
      nowMs: () => (reads++, base.now().getTime()),
    }
    const h = await startCore({ clock })
    h.device(A, SERIAL_A)
    const received: number[] = []
    h.core.onDevicePublish((m) => received.push(m.receivedAtMs))
    const client = await connected(h)
    clock.advance(5000)
    dates = 0
    reads = 0
    const publish = (i: number): Packet => ({
      cmd: 'publish',
      topic: `devices/${A}/telemetry`,
      payload: Buffer.from('{"t":1}'),
      qos: 1,
      messageId: i + 1,
      retain: false,
      dup: false,
    })
    expect(await flood(client, 20, publish, 'puback')).toBe(20)
    await waitFor(() => received.length === 20, 2000, '20 publishes reported')
    expect(dates).toBe(0)
    expect(reads).toBe(20)
    expect(new Set(received)).toEqual(new Set([Date.parse('2026-01-01T00:00:05Z')]))
  })

  it('clockMs reads nowMs when the clock has one, now().getTime() otherwise', () => {
    const fixed = fixedClock('2026-01-01T00:00:00Z')
    const ms = clockMs(fixed)
    fixed.advance('2s')
    expect(ms()).toBe(Date.parse('2026-01-01T00:00:02Z'))
    expect(clockMs({ now: () => new Date(0), nowMs: () => 42 })()).toBe(42)
    expect(typeof systemClock.nowMs).toBe('function')
  })
})
