import type { Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { startCore, type CoreHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

let serials = 0
const nextSerial = () => `b${++serials}`

async function device(h: CoreHarness, id: string, group: string | null) {
  const serial = nextSerial()
  h.directory.addDevice(id, { group })
  h.device(id, serial)
  const { client, connack } = await h.connect({ clientId: id, serial })
  expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
  return client
}

async function app(
  h: CoreHarness,
  name: string,
  opts: { clientId?: string; register?: boolean; groups?: string[] | null; serial?: string } = {},
) {
  const serial = opts.serial ?? nextSerial()
  if (opts.register !== false) h.directory.addApp(name, serial, { groups: opts.groups === undefined ? ['pumps'] : opts.groups })
  return h.connect({ cn: `app:${name}`, clientId: opts.clientId ?? `app:${name}`, serial })
}

const publishes = (received: Packet[]) =>
  received
    .filter((p): p is Packet & { cmd: 'publish'; topic: string; payload: Buffer } => p.cmd === 'publish')
    .map((p) => `${p.topic} ${p.payload}`)

describe('apps (CN and clientId app:<name>): subscribe inside their scope, filtered per message by the device group', () => {
  it("gets every pumps device's telemetry through a wildcard and nothing of other groups; other filters are refused", async () => {
    const h = await startCore()
    const pump1 = await device(h, 'pump-1', 'pumps')
    const pump2 = await device(h, 'pump-2', 'pumps')
    const valve = await device(h, 'valve-1', 'valves')
    const { client, connack } = await app(h, 'dash')
    expect(connack).toMatchObject({ returnCode: 0 })
    client.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [
        { topic: 'devices/+/telemetry/#', qos: 0 },
        { topic: 'devices/+/settings/reported', qos: 0 }, // reported settings: not in its classes
        { topic: 'devices/#', qos: 0 },
        { topic: 'devices/pump-1/settings', qos: 0 },
        { topic: '$SYS/#', qos: 0 },
      ],
    } as Packet)
    expect(await client.next()).toMatchObject({ cmd: 'suback', granted: [0, 128, 128, 128, 128] })
    const send = (c: typeof pump1, topic: string, payload: string) =>
      c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false } as Packet)
    let accepted = 0
    h.core.onDevicePublish(() => void accepted++)
    send(valve, 'devices/valve-1/telemetry', 'v1')
    send(pump1, 'devices/pump-1/telemetry', 'p1')
    send(valve, 'devices/valve-1/telemetry/flow', 'v2')
    send(pump2, 'devices/pump-2/telemetry/engine/rpm', 'p2')
    send(pump1, 'devices/pump-1/settings/reported', '{"version":1,"settings":{}}')
    await waitFor(() => accepted === 5, 2000, 'the five publishes accepted')
    // the marker: the broker took the valve's messages before it, so they would have been forwarded by now
    send(pump1, 'devices/pump-1/telemetry', 'marker')
    await waitFor(() => publishes(client.received).includes('devices/pump-1/telemetry marker'), 2000, 'the marker')
    expect(publishes(client.received).sort()).toEqual([
      'devices/pump-1/telemetry marker',
      'devices/pump-1/telemetry p1',
      'devices/pump-2/telemetry/engine/rpm p2',
    ])
  })

  it('an app of every group gets them all; an app never publishes: a PUBLISH to a device topic closes it, audited', async () => {
    const h = await startCore()
    const valve = await device(h, 'valve-1', 'valves')
    const loose = await device(h, 'loose-1', null)
    const { client } = await app(h, 'all', { groups: null })
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/+/telemetry', qos: 0 }] } as Packet)
    expect(await client.next()).toMatchObject({ granted: [0] })
    valve.send({
      cmd: 'publish',
      topic: 'devices/valve-1/telemetry',
      payload: Buffer.from('v'),
      qos: 0,
      retain: false,
      dup: false,
    } as Packet)
    loose.send({
      cmd: 'publish',
      topic: 'devices/loose-1/telemetry',
      payload: Buffer.from('l'),
      qos: 0,
      retain: false,
      dup: false,
    } as Packet)
    await waitFor(() => publishes(client.received).length === 2, 2000, 'both messages')
    client.send({
      cmd: 'publish',
      topic: 'devices/valve-1/settings',
      payload: Buffer.from('{}'),
      qos: 0,
      retain: false,
      dup: false,
    } as Packet)
    await client.closed
    expect(h.directory.auditsFor('publish.refused')).toMatchObject([{ subject: 'app:all', details: { topic: 'devices/valve-1/settings' } }])
  })

  it('is refused as unknown, with a clientId other than its CN, or revoked; a live session closes on app.revoked', async () => {
    const h = await startCore()
    expect((await app(h, 'ghost', { register: false })).connack).toMatchObject({ returnCode: 5 })
    expect((await app(h, 'dash', { clientId: 'pump-1' })).connack).toMatchObject({ returnCode: 5 })
    const { client, connack } = await app(h, 'dash')
    expect(connack).toMatchObject({ returnCode: 0 })
    h.directory.revokeApp('dash')
    await client.closed
    expect(h.directory.auditsFor('session.closed')).toMatchObject([{ subject: 'app:dash', details: { reason: 'app.revoked' } }])
    const again = await app(h, 'dash', { register: false, serial: [...h.directory.apps.keys()][0] })
    expect(again.connack).toMatchObject({ returnCode: 5 }) // its certificate is revoked
    const reasons = h.directory.auditsFor('connect.refused').map((a) => [a.subject, a.details?.reason])
    expect(reasons).toEqual([
      ['app:ghost', 'unknown-app'],
      ['app:dash', 'client-id-mismatch'],
      ['app:dash', 'app-revoked'],
    ])
  })

  it('app.revoked with a serial closes only a session on that certificate, not the app connected with its other one', async () => {
    const h = await startCore()
    const pump = await device(h, 'pump-1', 'pumps')
    h.directory.addApp('dash', 'd1', { groups: ['pumps'] })
    h.directory.addApp('dash', 'd2', { groups: ['pumps'] })
    const { client, connack } = await h.connect({ cn: 'app:dash', clientId: 'app:dash', serial: 'd2' })
    expect(connack).toMatchObject({ returnCode: 0 })
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/+/telemetry', qos: 0 }] } as Packet)
    expect(await client.next()).toMatchObject({ cmd: 'suback', granted: [0] })
    h.directory.revokeApp('dash', 'd1')
    // still open: it gets a message published after the other certificate's revocation
    pump.send({
      cmd: 'publish',
      topic: 'devices/pump-1/telemetry',
      payload: Buffer.from('after'),
      qos: 0,
      retain: false,
      dup: false,
    } as Packet)
    await waitFor(() => publishes(client.received).includes('devices/pump-1/telemetry after'), 2000, 'the message after the revocation')
    expect(h.directory.auditsFor('session.closed')).toEqual([])
    h.directory.revokeApp('dash', 'D2') // any form of the serial
    await client.closed
    expect(h.directory.auditsFor('session.closed')).toMatchObject([
      { subject: 'app:dash', details: { reason: 'app.revoked', serial: 'd2' } },
    ])
    expect((await h.connect({ cn: 'app:dash', clientId: 'app:dash', serial: 'd1' })).connack).toMatchObject({ returnCode: 5 })
  })

  it('refuses a persistent session, a will, and a connect whose app is revoked during its lookup; closes at certificate expiry', async () => {
    const h = await startCore({ limits: { sessionSweepMs: 100 } })
    h.directory.addApp('dash', 'c1')
    const as = { cn: 'app:dash', clientId: 'app:dash', serial: 'c1' }
    expect((await h.connect({ ...as, clean: false })).connack).toMatchObject({ returnCode: 5 })
    const will = { topic: 'devices/pump-1/telemetry', payload: Buffer.from('x'), qos: 0 as const, retain: false }
    expect((await h.connect({ ...as, will })).connack).toMatchObject({ returnCode: 5 })
    const release = h.directory.holdLookups()
    const pending = h.connect(as)
    await waitFor(() => h.directory.appLookups.length === 1, 2000, 'the lookup in flight')
    h.directory.revokeApp('dash') // the answer already judged the app live
    release()
    expect((await pending).connack).toMatchObject({ returnCode: 5 })
    h.directory.addApp('ops', 'c2')
    const expiring = await h.connect({
      cn: 'app:ops',
      clientId: 'app:ops',
      serial: 'c2',
      notAfter: new Date(h.clock.now().getTime() + 60_000),
    })
    expect(expiring.connack).toMatchObject({ returnCode: 0 })
    h.clock.advance('2m')
    await expiring.client.closed
    const reasons = h.directory.auditsFor('connect.refused').map((a) => a.details?.reason)
    expect(reasons).toEqual(['persistent-session-not-permitted', 'will-not-permitted', 'invalidated-during-connect'])
    expect(h.directory.auditsFor('session.closed')).toMatchObject([{ subject: 'app:ops', details: { reason: 'certificate-expired' } }])
  })
})
