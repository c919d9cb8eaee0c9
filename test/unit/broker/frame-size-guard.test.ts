import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { createFrameScanner } from '../../../broker/frame-size-guard.ts'
import { startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

const publish = (payloadBytes: number) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: 'devices/d/telemetry',
    payload: Buffer.alloc(payloadBytes),
    qos: 0,
    retain: false,
    dup: false,
  })

describe('createFrameScanner', () => {
  it('passes frames up to the limit, whole or split at any byte', () => {
    const frames = Buffer.concat([publish(10), publish(200), mqttPacket.generate({ cmd: 'pingreq' }), publish(0)])
    const max = publish(200).length
    expect(createFrameScanner(max).feed(frames)).toBeNull()
    const s = createFrameScanner(max)
    for (const byte of frames) expect(s.feed(Uint8Array.of(byte))).toBeNull()
  })

  it('reports a frame over the limit from its header alone', () => {
    const big = publish(70_000)
    const s = createFrameScanner(65_536)
    expect(s.feed(publish(5))).toBeNull()
    expect(s.feed(big.subarray(0, 4))).toEqual({ kind: 'too-large', declaredBytes: big.length })
    expect(s.feed(publish(1))).toEqual({ kind: 'too-large', declaredBytes: big.length }) // stays failed
  })

  it('reports a remaining length longer than four bytes', () => {
    expect(createFrameScanner(1024).feed(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01))).toEqual({ kind: 'malformed-length' })
  })
})

describe('packet size limit', () => {
  it('closes a connected device that sends a packet over maxPacketBytes, audited', async () => {
    const h = await startCore({ limits: { maxPacketBytes: 2048 } })
    h.device('pump-7', 'aa01')
    const published: unknown[] = []
    h.core.onDevicePublish((m) => published.push(m))
    const { client } = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    client.send({ cmd: 'publish', topic: 'devices/pump-7/telemetry', payload: Buffer.alloc(1000), qos: 0, retain: false, dup: false })
    await waitFor(() => published.length === 1, 2000, 'first publish')
    client.send({ cmd: 'publish', topic: 'devices/pump-7/telemetry', payload: Buffer.alloc(5000), qos: 0, retain: false, dup: false })
    await client.closed
    expect(published).toHaveLength(1)
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({
      reason: 'packet-too-large',
      declaredBytes: 5000 + 2 + 24 + 3,
    })
  })

  it('closes a connection whose CONNECT is over the limit, before authentication', async () => {
    const h = await startCore({ limits: { maxPacketBytes: 128 } })
    h.device('pump-7', 'aa01')
    await expect(
      h.connect({
        clientId: 'pump-7',
        serial: 'aa01',
        will: { topic: 'devices/pump-7/telemetry', payload: Buffer.alloc(500), qos: 0, retain: false },
      }),
    ).rejects.toThrow(/closed/)
    expect(h.directory.lookups).toHaveLength(0)
  })
})
