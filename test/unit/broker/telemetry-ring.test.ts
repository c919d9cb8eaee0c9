import { describe, expect, it } from 'vitest'
import { trackTelemetry } from '../../../broker/telemetry-ring.ts'
import { startCore, type CoreHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

/** A connected device that publishes; `publish` resolves once the broker reported the message to its listeners. */
let serials = 0
async function device(h: CoreHarness, id: string) {
  const serial = `a${++serials}`
  h.device(id, serial)
  const { client } = await h.connect({ clientId: id, serial })
  let seen = 0
  h.core.onDevicePublish((m) => void (m.deviceId === id && seen++))
  let sent = 0
  return {
    async publish(topic: string, payload: string | Buffer) {
      client.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false })
      sent++
      await waitFor(() => seen >= sent, 2000, `publish ${sent} of ${id}`)
    },
  }
}

describe('trackTelemetry (GET /v1/devices/{id}/telemetry: the last values of a device)', () => {
  it('keeps telemetry with its receive time and subtopic, JSON parsed, anything else as base64, newest first', async () => {
    const h = await startCore()
    const ring = trackTelemetry(h.core)
    const pump = await device(h, 'pump-1')
    await pump.publish('devices/pump-1/telemetry', '{"temp":21.5}')
    h.clock.advance('1m')
    await pump.publish('devices/pump-1/telemetry/engine/rpm', Buffer.from([0xff, 0x00, 0x01]))
    await pump.publish('devices/pump-1/settings/reported', '{"version":1,"settings":{}}') // not telemetry
    expect(ring.recent('pump-1', 10)).toEqual([
      { receivedAt: '2026-01-01T00:01:00.000Z', subtopic: 'engine/rpm', qos: 0, format: 'base64', value: '/wAB' },
      { receivedAt: '2026-01-01T00:00:00.000Z', subtopic: '', qos: 0, format: 'json', value: { temp: 21.5 } },
    ])
    expect(ring.recent('pump-1', 1)).toHaveLength(1)
    expect(ring.recent('pump-1', 0)).toEqual([])
    expect(ring.recent('valve-9', 10)).toEqual([])
    ring.close()
    await pump.publish('devices/pump-1/telemetry', '3')
    expect(ring.recent('pump-1', 10)).toHaveLength(2) // closed: no longer listening
  })

  it('is bounded per device, in devices (the least recently active forgotten first) and in bytes', async () => {
    const h = await startCore()
    const ring = trackTelemetry(h.core, { perDevice: 3, maxDevices: 2, maxBytes: 60 })
    const [a, b, c] = [await device(h, 'a'), await device(h, 'b'), await device(h, 'c')]
    for (let i = 1; i <= 5; i++) await a.publish('devices/a/telemetry', String(i))
    expect(ring.recent('a', 10).map((e) => e.value)).toEqual([5, 4, 3])
    await b.publish('devices/b/telemetry', '1')
    await a.publish('devices/a/telemetry', '6') // 'a' is the most recently active again: 'b' goes next
    await c.publish('devices/c/telemetry', '1')
    expect(ring.recent('b', 10)).toEqual([])
    expect(ring.recent('a', 10).map((e) => e.value)).toEqual([6, 5, 4])
    // 60 bytes more from 'c' (61) and the 3 of 'a' are over 60: 'a' (least recently active) is forgotten
    await c.publish('devices/c/telemetry', `"${'x'.repeat(58)}"`)
    expect(ring.recent('a', 10)).toEqual([])
    // one device alone over the byte bound keeps its newest messages only
    await c.publish('devices/c/telemetry', `"${'y'.repeat(58)}"`)
    expect(ring.recent('c', 10).map((e) => String(e.value).slice(0, 1))).toEqual(['y'])
  })

  it('shows each message with its own bytes after its slot held a longer one (a slot reuses its copy buffer)', async () => {
    const h = await startCore()
    const ring = trackTelemetry(h.core, { perDevice: 2 })
    const pump = await device(h, 'pump-3')
    const values = ['"abcdefgh"', '123456', '7', '"x"', '8', '{"a":[1,2]}', '9']
    for (const [i, v] of values.entries()) {
      await pump.publish('devices/pump-3/telemetry', v)
      const shown = ring.recent('pump-3', 10).map((e) => e.value)
      expect(shown).toEqual(
        values
          .slice(Math.max(0, i - 1), i + 1)
          .reverse()
          .map((x) => JSON.parse(x)),
      )
    }
    await pump.publish('devices/pump-3/telemetry', Buffer.from([0xff]))
    expect(ring.recent('pump-3', 1)).toMatchObject([{ format: 'base64', value: '/w==' }])
  })

  it('keeps a steadily active device while more than maxDevices others pass through, and never holds more', async () => {
    const h = await startCore()
    const ring = trackTelemetry(h.core, { perDevice: 1, maxDevices: 3 })
    const hot = await device(h, 'hot')
    for (let i = 0; i < 8; i++) {
      await hot.publish('devices/hot/telemetry', String(i))
      await (await device(h, `cold-${i}`)).publish(`devices/cold-${i}/telemetry`, '1')
      expect(ring.recent('hot', 1).map((e) => e.value)).toEqual([i]) // never forgotten
    }
    const remembered = Array.from({ length: 8 }, (_, i) => ring.recent(`cold-${i}`, 1).length).reduce((a, b) => a + b, 0)
    expect(remembered).toBe(2) // 3 devices at most: hot and two of the cold ones
    expect(ring.recent('cold-7', 1)).toHaveLength(1) // the one that just published
  })

  it("stamps a message with the time its packet was read (the broker's one clock read), and a will with the time it fires", async () => {
    const h = await startCore()
    const ring = trackTelemetry(h.core)
    h.device('pump-2', 'b1')
    const will = { topic: 'devices/pump-2/telemetry/will', payload: Buffer.from('"gone"'), qos: 0 as const, retain: false }
    const { client } = await h.connect({ clientId: 'pump-2', serial: 'b1', will })
    const seen: number[] = []
    h.core.onDevicePublish((m) => void seen.push(m.receivedAtMs))
    client.send({ cmd: 'publish', topic: 'devices/pump-2/telemetry', payload: Buffer.from('1'), qos: 0, retain: false, dup: false })
    await waitFor(() => seen.length === 1, 2000, 'the telemetry')
    expect(seen[0]).toBe(h.clock.now().getTime())
    h.clock.advance('1m')
    client.end() // the connection drops without DISCONNECT: the will is published
    await waitFor(() => seen.length === 2, 2000, 'the will')
    expect(ring.recent('pump-2', 10).map((e) => [e.subtopic, e.receivedAt])).toEqual([
      ['will', '2026-01-01T00:01:00.000Z'],
      ['', '2026-01-01T00:00:00.000Z'],
    ])
  })
})
