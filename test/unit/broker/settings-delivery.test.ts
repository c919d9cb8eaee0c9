import type { IPublishPacket } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { attachSettingsDelivery } from '../../../broker/index.ts'
import type { SettingsDocument } from '../../../broker/settings-delivery.ts'
import { createRecordingLogger, startCore, type CoreHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { PacketClient } from '../../helpers/mqtt-packet-stream.ts'

const A = 'pump-7'
const SERIAL_A = 'aa01'
const TOPIC = `devices/${A}/settings`

/** A core with settings delivery over a source that counts its reads; the document is ~52 KB, as in the issue. */
async function world(): Promise<{ h: CoreHarness; reads: () => number; setVersion: (v: number) => void }> {
  const h = await startCore()
  h.device(A, SERIAL_A)
  let reads = 0
  let version = 1
  const doc = (): SettingsDocument => ({ version, settings: { blob: 'x'.repeat(52_000) }, updatedAt: '2026-01-01T00:00:00Z' })
  const { log } = createRecordingLogger()
  attachSettingsDelivery(h.core, {
    source: { current: async () => (reads++, doc()), report: () => {} },
    events: h.directory,
    log,
  })
  return {
    h,
    reads: () => reads,
    setVersion(v) {
      version = v
      h.directory.emit({ type: 'settings.changed', deviceId: A, version: v })
    },
  }
}

const docs = (client: PacketClient) =>
  client.received
    .filter((p): p is IPublishPacket => p.cmd === 'publish' && p.topic === TOPIC)
    .map((p) => (JSON.parse(p.payload.toString()) as SettingsDocument).version)

/** Subscribes `count` times to the settings topic and waits for every SUBACK. */
async function subscribeTimes(client: PacketClient, count: number, firstId: number): Promise<void> {
  const before = client.received.filter((p) => p.cmd === 'suback').length
  for (let i = 0; i < count; i++) client.send({ cmd: 'subscribe', messageId: firstId + i, subscriptions: [{ topic: TOPIC, qos: 1 }] })
  await waitFor(() => client.received.filter((p) => p.cmd === 'suback').length === before + count, 5000, `${count} SUBACKs`)
}

/** Acks every settings document, as a well-behaved device does. */
function ackAll(client: PacketClient): void {
  const acked = new Set<number>()
  const timer = setInterval(() => {
    for (const p of client.received) {
      if (p.cmd === 'publish' && p.messageId !== undefined && !acked.has(p.messageId)) {
        acked.add(p.messageId)
        client.send({ cmd: 'puback', messageId: p.messageId })
      }
    }
  }, 5)
  void client.closed.then(() => clearInterval(timer))
}

describe('settings delivery: once per session and version', () => {
  it('reads and sends the document once however often the device subscribes, and once more per change', async () => {
    const w = await world()
    const { client } = await w.h.connect({ clientId: A, serial: SERIAL_A })
    ackAll(client)
    await subscribeTimes(client, 150, 1)
    await waitFor(() => docs(client).length === 1, 2000, 'the first document')
    w.setVersion(2)
    await waitFor(() => docs(client).length === 2, 2000, 'the changed document')
    await subscribeTimes(client, 30, 500)
    w.setVersion(3) // the later positive marker: nothing was sent for the repeated SUBSCRIBEs before it
    await waitFor(() => docs(client).length === 3, 2000, 'the next change')
    expect(docs(client)).toEqual([1, 2, 3])
    expect(w.reads()).toBe(3)
  })

  it('sends again in a new session', async () => {
    const w = await world()
    const first = (await w.h.connect({ clientId: A, serial: SERIAL_A })).client
    await subscribeTimes(first, 3, 1)
    await waitFor(() => docs(first).length === 1, 2000, 'first session document')
    first.end()
    await first.closed
    const second = (await w.h.connect({ clientId: A, serial: SERIAL_A })).client
    await subscribeTimes(second, 3, 1)
    await waitFor(() => docs(second).length === 1, 2000, 'second session document')
    expect(w.reads()).toBe(2)
  })
})

/** A clean=false device that subscribed, got version 1, and disconnected: its session is stored. */
async function awayWithPersistentSession(): ReturnType<typeof world> {
  const w = await world()
  const first = (await w.h.connect({ clientId: A, serial: SERIAL_A, clean: false })).client
  ackAll(first)
  await subscribeTimes(first, 1, 1)
  await waitFor(() => docs(first).length === 1, 2000, 'the first document')
  first.end()
  await first.closed
  await waitFor(() => !w.h.core.isConnected(A), 2000, 'the broker to see the disconnect')
  return w
}

describe('settings delivery: offline catch-up of a persistent session', () => {
  it('sends the current document to a device that resumes its session without subscribing, if it changed while away', async () => {
    const w = await awayWithPersistentSession()

    w.setVersion(2)
    const { client: back, connack } = await w.h.connect({ clientId: A, serial: SERIAL_A, clean: false })
    expect(connack).toMatchObject({ returnCode: 0, sessionPresent: true })
    // (a copy of version 1 may come first: the stored session replays what was not acked before the close)
    await waitFor(() => docs(back).includes(2), 2000, 'the catch-up document')
    expect(docs(back).filter((v) => v === 2)).toHaveLength(1)
  })

  it('sends nothing on resume when nothing changed (the next change is the marker)', async () => {
    const w = await awayWithPersistentSession()

    const { client: back } = await w.h.connect({ clientId: A, serial: SERIAL_A, clean: false })
    ackAll(back)
    w.setVersion(2)
    await waitFor(() => docs(back).includes(2), 2000, 'the change')
    expect(docs(back).filter((v) => v === 2)).toHaveLength(1)
    expect(w.reads()).toBe(2)
  })
})

describe('settings delivery: refused reports', () => {
  it('logs a flood of refused reports once per device and code, with the number suppressed', async () => {
    const h = await startCore()
    h.device(A, SERIAL_A)
    const { log, records } = createRecordingLogger('info')
    const reports: unknown[] = []
    attachSettingsDelivery(h.core, {
      source: {
        current: async () => undefined,
        report: (_id, payload) => {
          reports.push(payload)
          if ((payload as { ok?: boolean }).ok !== true)
            throw Object.assign(new Error(`bad report ${'k'.repeat(60_000)}`), { code: 'GH_SETTINGS_INVALID' })
        },
      },
      events: h.directory,
      log,
      clock: h.clock,
    })
    const { client } = await h.connect({ clientId: A, serial: SERIAL_A })
    const report = (payload: string) =>
      client.send({ cmd: 'publish', topic: `${TOPIC}/reported`, payload: Buffer.from(payload), qos: 0, retain: false, dup: false })
    for (let i = 0; i < 20; i++) report('{"version": 1, "settings": {"$enc": "x"}}')
    for (let i = 0; i < 20; i++) report('not json')
    report('{"ok": true}') // the later positive marker
    await waitFor(() => reports.length === 21, 5000, 'every JSON report handed to the control plane')
    const refused = records.filter((r) => r.msg === 'settings report refused')
    expect(refused).toHaveLength(1)
    expect(String(refused[0]?.err).length).toBeLessThan(200)
    expect(records.filter((r) => r.msg === 'settings report is not JSON; ignored')).toHaveLength(1)
    // after the interval, the next one says how many were suppressed
    h.clock.advance(60_000)
    report('{"version": 2}')
    await waitFor(
      () => records.filter((r) => r.msg === 'settings report refused').length === 2,
      5000,
      'the next refusal after the interval',
    )
    expect(records.filter((r) => r.msg === 'settings report refused')[1]).toMatchObject({ suppressed: 19 })
  })
})
