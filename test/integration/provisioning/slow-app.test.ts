import { Writable } from 'node:stream'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

// Slow apps are bounded (docs/device-protocol.md "Apps"): an app that stops reading its socket holds at
// most limits.maxQueuedMessages / maxQueuedBytes of the broker's memory, the messages beyond are dropped,
// counted and logged once per throttle window, devices and other subscribers go on at full speed, and
// the app gets the newest messages once it reads again. An app's packets cost its packet budget as a
// device's do, except the acknowledgements of what the broker delivered to it (an app reading a fleet's
// QoS 1 telemetry acks every message: the fleet, not the app, sets that rate).

const MAX_QUEUED = 20
const MAX_QUEUED_BYTES = 1024 * 1024
const PAYLOAD = Buffer.alloc(32 * 1024, 'x')
/** 10 MiB: more than loopback's socket buffers hold, so the broker's own buffer for the app must fill */
const MESSAGES = 320

type LogLine = { msg?: string; code?: string; clientId?: string; action?: string }

async function running(limits: Record<string, unknown>) {
  const logs: LogLine[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line))
      done()
    },
  })
  const config = loadConfig({ dataDir: tempDir(), mqttPort: 0, httpPort: 0, metricsPort: 0, aiEnabled: false, limits }, {})
  const gatehouse = await startGatehouse(config, { log: pino({ level: 'info' }, sink) })
  onTestFinished(() => gatehouse.close())
  const cp = gatehouse.control
  const device = async (id: string, group: string): Promise<MqttClient> => {
    const issued = await cp.authority.createDevice({ id, group }, 'operator:test')
    return connectDevice(gatehouse.mqtt.port, {
      deviceId: id,
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: '',
    })
  }
  const app = async (name: string): Promise<MqttClient> => {
    const prepared = await cp.apps.prepareCreate({ name, groups: ['pumps'], classes: ['telemetry'] }, 'operator:test')
    await prepared.commit()
    const { certificatePem: cert, privateKeyPem: key, chainPem: ca } = prepared.issued
    return connectDevice(gatehouse.mqtt.port, { deviceId: `app:${name}`, cert, key: key!, ca, serial: '' })
  }
  return { gatehouse, logs, device, app }
}

const received = (client: MqttClient): string[] => {
  const got: string[] = []
  client.on('message', (topic, payload) => got.push(payload.length === PAYLOAD.length ? topic : `${topic} ${payload}`))
  return got
}

describe('a slow app is bounded like a device', () => {
  it('an app that stops reading holds at most its queue bound, drops the rest (counted, logged once), slows nobody, and gets the newest messages when it reads again', async () => {
    const { gatehouse, logs, device, app } = await running({
      maxQueuedMessages: MAX_QUEUED,
      maxQueuedBytes: MAX_QUEUED_BYTES,
      publishRate: { ratePerSecond: 10_000, burst: 10_000 },
      publishBytesRate: { ratePerSecond: 64 * 1024 * 1024, burst: 64 * 1024 * 1024 },
      packetRate: { ratePerSecond: 10_000, burst: 10_000 },
    })
    const pump = await device('pump-1', 'pumps')
    const slow = await app('slow')
    const fast = await app('fast')
    await slow.subscribeAsync('devices/+/telemetry/#', { qos: 1 })
    await fast.subscribeAsync('devices/+/telemetry/#', { qos: 1 })
    const slowGot = received(slow)
    const fastGot = received(fast)
    // the app stops reading: its socket's receive buffer fills, then the broker's send buffer for it
    slow.stream.pause()
    const slowSocket = () =>
      (gatehouse.broker.aedes as unknown as { clients: Record<string, { conn: Writable }> }).clients['app:slow']!.conn
    const droppedBefore = gatehouse.broker.sessionStats().droppedMessages

    // what the broker holds for the app, read after every PUBACK; QoS 1, a few in flight (a burst within
    // the queue bound: the app that reads keeps up)
    let held = 0
    for (let i = 0; i < MESSAGES; i += 8) {
      await Promise.all(
        Array.from({ length: 8 }, () =>
          pump.publishAsync('devices/pump-1/telemetry', PAYLOAD, { qos: 1 }).then(() => {
            held = Math.max(held, slowSocket().writableLength)
          }),
        ),
      )
    }
    // the device was never held back by the app (every PUBACK came) and the app that reads got everything
    await waitFor(() => fastGot.length >= MESSAGES, 10_000, 'the reading app to get every message')
    expect(fastGot.length).toBe(MESSAGES)
    expect(held).toBeGreaterThan(0)
    expect(held).toBeLessThanOrEqual(MAX_QUEUED_BYTES)
    const dropped = gatehouse.broker.sessionStats().droppedMessages - droppedBefore
    expect(dropped).toBeGreaterThan(0)
    const metrics = await fetch(`${gatehouse.metricsHttp!.url}/metrics`).then((r) => r.text())
    expect(metrics).toMatch(new RegExp(`\\ngatehouse_session_queue_dropped_total ${droppedBefore + dropped}\\n`))
    // logged once per throttle window, however many were dropped
    expect(logs.filter((l) => l.code === 'GH_BROKER_SESSION_FULL' && l.clientId === 'app:slow')).toHaveLength(1)

    // it reads again: what its socket kept arrives (the broker's buffer for it drains), then the newest message
    slow.stream.resume()
    await waitFor(() => !slowSocket().writableNeedDrain, 10_000, "the broker's socket to the app to drain")
    await pump.publishAsync('devices/pump-1/telemetry', 'newest', { qos: 1 })
    await waitFor(() => slowGot.includes('devices/pump-1/telemetry newest'), 10_000, 'the newest message at the resumed app')
    expect(slowGot.length + dropped).toBe(MESSAGES + 1)
    expect(slow.connected).toBe(true)
  })

  it('an app reading QoS 1 telemetry faster than its packet budget acks every message and stays connected', async () => {
    // burst 40 and no refill to speak of: the app acks 240 messages, six times its burst
    const { gatehouse, device, app } = await running({
      packetRate: { ratePerSecond: 0.01, burst: 40 },
      publishRate: { ratePerSecond: 10_000, burst: 10_000 },
    })
    const reader = await app('reader')
    await reader.subscribeAsync('devices/+/telemetry', { qos: 1 })
    const got = received(reader)
    // eight devices, 30 QoS 1 messages each: within each device's own budget of 40 packets
    const pumps = await Promise.all(Array.from({ length: 8 }, (_, i) => device(`pump-${i + 1}`, 'pumps')))
    await Promise.all(
      pumps.map((p) =>
        Promise.all(Array.from({ length: 30 }, (_, j) => p.publishAsync(`devices/${p.options.clientId}/telemetry`, `m${j}`, { qos: 1 }))),
      ),
    )
    await waitFor(() => got.length === 240, 10_000, 'the 240 messages at the app')
    // a round trip behind the 240 PUBACKs on the same connection: the broker read them all and kept the app
    await reader.subscribeAsync('devices/+/telemetry', { qos: 1 })
    expect(reader.connected).toBe(true)
    expect(await gatehouse.control.store.listAudit({ subject: 'app:reader', action: 'device.throttled' })).toEqual([])
  })

  it('an app that subscribes too fast is closed by the packet budget and audited as a device is', async () => {
    const { gatehouse, logs, app } = await running({ packetRate: { ratePerSecond: 1, burst: 20 } })
    const flood = await app('flood')
    const closed = closedWithin(flood)
    // 21 packets after CONNECT: one more than the burst
    for (let i = 0; i < 21; i++) flood.subscribe('devices/+/telemetry', { qos: 0 })
    await closed
    const throttled = logs.find((l) => l.code === 'GH_BROKER_PACKET_RATE_LIMITED')
    expect(throttled).toMatchObject({ clientId: 'app:flood' })
    const audit = await waitFor(
      async () => (await gatehouse.control.store.listAudit({ subject: 'app:flood', action: 'device.throttled' }))[0],
      5000,
      "the app's device.throttled audit entry",
    )
    expect(audit.details).toMatchObject({ limit: 'packets' })
  })
})
