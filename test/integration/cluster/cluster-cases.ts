import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { beforeEach, expect, it, onTestFinished } from 'vitest'
import { WILL_BOUND_MS } from '../../../broker/cluster.ts'
import type { ConfigInput } from '../../../config.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice, mqttOptions } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'
import { liveSessions, type ClusterWorld } from './cluster-world.ts'

// connect budget per device across the cluster: 10 CONNECTs per 200 s (rate-limit test); other tests use fresh devices
const CONNECT_BURST = 10
/** the per-device queue bound on Redis (the 100-message test stays under it) */
const MAX_QUEUED = 120
/** the per-device queue's bytes on Redis: 24 messages of 8 KiB fit, as stored (the small-message tests stay far under it) */
const MAX_QUEUED_BYTES = 200_000
const BIG = 8192

/** What the world of clusterCases is started with (on top of its engine's configuration). */
export const CLUSTER_CASES_CONFIG: ConfigInput = {
  limits: {
    connectRatePerClientId: { burst: CONNECT_BURST, ratePerSecond: 0.05 },
    maxQueuedMessages: MAX_QUEUED,
    maxQueuedBytes: MAX_QUEUED_BYTES,
  },
}

/** An mqtt.js client that keeps every packet it receives, in order, and never rejects: the test reads its state. */
function watchedClient(port: number, creds: DeviceCredentials, clean = true) {
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, mqttOptions(creds, { clean }))
  onTestFinished(() => void client.end(true))
  const packets: string[] = []
  const state = { connected: false, closed: false }
  client.on('packetreceive', (p) => packets.push(p.cmd))
  client.on('connect', () => (state.connected = true))
  client.on('close', () => (state.closed = true))
  client.on('error', () => {})
  return { client, packets, state }
}

const insights = (id: string) => `devices/${id}/insights`
// aedes-persistence-redis' encoding of what it stores (no types shipped)
const msgpack = createRequire(import.meta.url)('msgpack-lite') as { encode(value: unknown): Buffer }

/**
 * The in-process three-node cases of issue 13 that hold whatever the registry's engine is: cluster.test.ts
 * runs them on one SQLite data directory, pg-cluster.test.ts on one PostgreSQL, each inside its describe on
 * the world it started once (with CLUSTER_CASES_CONFIG) in beforeAll. Call it last in the describe: its
 * last case restarts Redis.
 */
export function clusterCases(world: () => ClusterWorld): void {
  let w: ClusterWorld
  beforeEach(() => {
    w = world()
  })
  const port = (node: number) => (w.nodes[node] as ClusterWorld['nodes'][number]).mqtt.port
  const node = (i: number) => w.nodes[i] as ClusterWorld['nodes'][number]

  it('a second connection of a device on node B closes its session on node A within 1 s', async () => {
    const creds = await w.provision('move-1')
    const onA = await connectDevice(port(0), creds)
    const closed = closedWithin(onA)
    const started = performance.now()
    await connectDevice(port(1), creds)
    await closed
    expect(performance.now() - started).toBeLessThan(1000)
    await waitFor(() => liveSessions(w, 'move-1') === 1 && node(1).broker.isConnected('move-1'), 2000, 'one session, on B')
  })

  it('30 rounds of simultaneous connects of one clientId on two nodes leave exactly one session', async () => {
    for (let round = 0; round < 30; round++) {
      const creds = await w.provision(`race-${round}`)
      const a = watchedClient(port(0), creds)
      const b = watchedClient(port(1), creds)
      const alone = (x: typeof a, y: typeof a) => x.state.closed && !y.state.closed && y.state.connected
      const settled = () => (a.state.closed && b.state.closed) || ((alone(a, b) || alone(b, a)) && liveSessions(w, creds.deviceId) === 1)
      await waitFor(settled, 5000, `round ${round}: one of the two closed, the other connected`)
      expect(a.state.closed && b.state.closed, `round ${round}: both kicked`).toBe(false)
      const survivor = a.state.closed ? b : a
      expect(survivor.state.connected).toBe(true)
      a.client.end(true)
      b.client.end(true)
    }
  }, 60_000)

  it('a device offline while 100 QoS 1 messages go through node C gets all 100 on node B, with session present', async () => {
    const creds = await w.provision('queue-1')
    const onA = await connectDevice(port(0), creds, { clean: false })
    await onA.subscribeAsync(insights('queue-1'), { qos: 1 })
    await onA.endAsync()
    await waitFor(() => liveSessions(w, 'queue-1') === 0, 2000, 'queue-1 offline')
    for (let i = 0; i < 100; i++) await node(2).broker.publishToDevice(insights('queue-1'), String(i), { qos: 1 })
    const received = new Set<string>()
    const onB = mqtt.connect(`mqtts://127.0.0.1:${port(1)}`, mqttOptions(creds, { clean: false }))
    onTestFinished(() => void onB.end(true))
    onB.on('message', (_topic, payload) => received.add(payload.toString()))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => onB.once('connect', resolve))
    expect(connack.sessionPresent).toBe(true)
    await waitFor(
      () => received.size === 100,
      5000,
      () => `100 messages; got ${received.size}`,
    )
  })

  it('the queue of an offline device in Redis keeps at most limits.maxQueuedMessages, dropping the oldest', async () => {
    const creds = await w.provision('queue-full-1')
    const first = await connectDevice(port(0), creds, { clean: false })
    await first.subscribeAsync(insights('queue-full-1'), { qos: 1 })
    await first.endAsync()
    await waitFor(() => liveSessions(w, 'queue-full-1') === 0, 2000, 'queue-full-1 offline')
    for (let i = 0; i < MAX_QUEUED + 10; i++) await node(i % 3).broker.publishToDevice(insights('queue-full-1'), String(i), { qos: 1 })
    const received = new Set<number>()
    const back = mqtt.connect(`mqtts://127.0.0.1:${port(1)}`, mqttOptions(creds, { clean: false }))
    onTestFinished(() => void back.end(true))
    back.on('message', (_t, payload) => received.add(Number(payload.toString())))
    await waitFor(
      () => received.size === MAX_QUEUED,
      5000,
      () => `${MAX_QUEUED} messages; got ${received.size}`,
    )
    // the oldest 10 were dropped: a marker published now arrives after the queue, and none of them came
    await node(2).broker.publishToDevice(insights('queue-full-1'), '-1', { qos: 1 })
    await waitFor(() => received.has(-1), 3000, 'the marker')
    expect(Math.min(...[...received].filter((n) => n >= 0))).toBe(10)
  })

  it('the queue of an offline device in Redis keeps at most limits.maxQueuedBytes, dropping the oldest, counted', async () => {
    const creds = await w.provision('queue-bytes-1')
    const first = await connectDevice(port(0), creds, { clean: false })
    await first.subscribeAsync(insights('queue-bytes-1'), { qos: 1 })
    await first.endAsync()
    await waitFor(() => liveSessions(w, 'queue-bytes-1') === 0, 2000, 'queue-bytes-1 offline')
    const droppedBefore = [0, 1, 2].reduce((sum, n) => sum + node(n).broker.sessionStats().droppedMessages, 0)
    const sent = 40
    for (let i = 0; i < sent; i++) {
      await node(i % 3).broker.publishToDevice(insights('queue-bytes-1'), `${i}:`.padEnd(BIG, 'x'), { qos: 1 })
    }
    const droppedAfter = [0, 1, 2].reduce((sum, n) => sum + node(n).broker.sessionStats().droppedMessages, 0)
    const received = new Set<number>()
    const back = mqtt.connect(`mqtts://127.0.0.1:${port(1)}`, mqttOptions(creds, { clean: false }))
    onTestFinished(() => void back.end(true))
    back.on('message', (_t, payload) => received.add(Number(payload.toString().split(':')[0])))
    // the queue comes in order: once the newest is in, so is everything kept before it
    await waitFor(() => received.has(sent - 1), 5000, 'the newest message')
    const kept = [...received].sort((a, b) => a - b)
    // the newest ones, none missing between them, their bytes under the bound (each stored with ~100 bytes of fields)
    expect(kept.length).toBeGreaterThanOrEqual(Math.floor(MAX_QUEUED_BYTES / (BIG + 200)))
    expect(kept.length).toBeLessThanOrEqual(Math.floor(MAX_QUEUED_BYTES / BIG))
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => sent - kept.length + i))
    expect(droppedAfter - droppedBefore).toBe(sent - kept.length)
  })

  it('a live move between nodes with a message every 5 ms: CONNACK is always the first packet and nothing is lost', async () => {
    const creds = await w.provision('live-1')
    const received = new Set<string>()
    const first: string[] = []
    const connectOn = async (n: number) => {
      const c = mqtt.connect(`mqtts://127.0.0.1:${port(n)}`, mqttOptions(creds, { clean: false }))
      onTestFinished(() => void c.end(true))
      c.once('packetreceive', (p) => first.push(p.cmd))
      c.on('message', (_t, payload) => received.add(payload.toString()))
      c.on('error', () => {})
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve())
        c.once('close', () => reject(new Error(`closed before CONNACK on node ${n}: first packet ${first.at(-1)}`)))
      })
      return c
    }
    const c0 = await connectOn(0)
    await c0.subscribeAsync(insights('live-1'), { qos: 1 })
    let sent = 0
    let publishing = true
    const publisher = (async () => {
      while (publishing && sent < 2000) {
        await node(2).broker.publishToDevice(insights('live-1'), String(sent++), { qos: 1 })
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    for (const n of [1, 0, 1, 0, 1]) {
      await connectOn(n)
      await waitFor(() => received.size > sent - 20 && sent > 0, 3000, 'messages flowing after the move')
    }
    publishing = false
    await publisher
    await waitFor(
      () => received.size === sent,
      5000,
      () => `all ${sent} messages; got ${received.size}`,
    )
    expect(first.every((cmd) => cmd === 'connack')).toBe(true)
  }, 30_000)

  it('the connect rate of a device holds as it hops nodes', async () => {
    const creds = await w.provision('hop-1')
    for (let i = 0; i < CONNECT_BURST; i++) expect((await attemptConnect(port(i % 3), creds)).connack).toBe(0)
    for (let n = 0; n < 3; n++) expect((await attemptConnect(port(n), creds)).connack).toBe(3)
  })

  it('a session survives a restart of its node: session present and the queued messages', async () => {
    const creds = await w.provision('restart-node-1')
    const before = await connectDevice(port(2), creds, { clean: false })
    await before.subscribeAsync(insights('restart-node-1'), { qos: 1 })
    await before.endAsync()
    await w.restartNode(2)
    await node(0).broker.publishToDevice(insights('restart-node-1'), 'queued', { qos: 1 })
    const after = mqtt.connect(`mqtts://127.0.0.1:${port(2)}`, mqttOptions(creds, { clean: false }))
    onTestFinished(() => void after.end(true))
    const received: string[] = []
    after.on('message', (_t, payload) => received.push(payload.toString()))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => after.once('connect', resolve))
    expect(connack.sessionPresent).toBe(true)
    await waitFor(() => received.includes('queued'), 3000, 'the message queued while the node restarted')
  })

  it("a dead node's will of a device the registry no longer knows is dropped, and that node's other will still goes out", async () => {
    await w.provision('orphan-kept-1')
    // a node that died with two wills stored (as aedes-persistence-redis stores them): one of a device since
    // deleted from the registry (no revocation event reached Redis to drop it), then one of a live device
    const deadNode = `dead-${randomUUID()}`
    const redis = new Redis(w.redis.url)
    onTestFinished(() => void redis.quit())
    const wills: string[] = []
    for (let n = 0; n < 3; n++)
      node(n).broker.aedes.on('publish', (packet) => {
        if (packet.topic.endsWith('/telemetry/status')) wills.push(packet.payload.toString())
      })
    const started = performance.now()
    for (const id of ['orphan-gone-1', 'orphan-kept-1']) {
      const key = `will:${deadNode}:${id}`
      const will = { cmd: 'publish', topic: `devices/${id}/telemetry/status`, payload: Buffer.from(`gone ${id}`), qos: 1, retain: false }
      await redis.set(key, msgpack.encode({ ...will, clientId: id, brokerId: deadNode }))
      await redis.rpush('will', key)
    }
    await waitFor(() => wills.includes('gone orphan-kept-1'), WILL_BOUND_MS + 2000, "the live device's will")
    expect(performance.now() - started).toBeLessThan(WILL_BOUND_MS)
    expect(wills).not.toContain('gone orphan-gone-1')
    expect(await redis.exists(`will:${deadNode}:orphan-gone-1`)).toBe(0)
  }, 20_000)

  it('fan-out between nodes recovers after a Redis restart', async () => {
    const creds = await w.provision('restart-1')
    const onA = await connectDevice(port(0), creds)
    const received: string[] = []
    onA.on('message', (_t, payload) => received.push(payload.toString()))
    await onA.subscribeAsync(insights('restart-1'), { qos: 0 })
    await w.redis.restart()
    let tries = 0
    await waitFor(
      async () => {
        await node(2)
          .broker.publishToDevice(insights('restart-1'), `after-${tries++}`, { qos: 0 })
          .catch(() => {})
        return received.length > 0
      },
      10_000,
      'a message through node C after the restart',
    )
  }, 20_000)
}
