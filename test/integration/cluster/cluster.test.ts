import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { attemptConnect, closedWithin, connectDevice, mqttOptions } from '../../helpers/mqtt-clients.ts'
import { redisAvailable } from '../../helpers/redis-server.ts'
import { GATEHOUSE_BIN, spawnCli } from '../../helpers/run-cli.ts'
import { WILL_BOUND_MS } from '../../../broker/cluster.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { liveSessions, startClusterWorld, type ClusterWorld } from './cluster-world.ts'

// connect budget per device across the cluster: 10 CONNECTs per 200 s (rate-limit test); other tests use fresh devices
const CONNECT_BURST = 10
/** the per-device queue bound on Redis (the 100-message test stays under it) */
const MAX_QUEUED = 120
/** the per-device queue's bytes on Redis: 24 messages of 8 KiB fit, as stored (the small-message tests stay far under it) */
const MAX_QUEUED_BYTES = 200_000
const BIG = 8192

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

/**
 * A `gatehouse start --cluster` node as its own process (so it can be SIGKILLed or SIGSTOPped) on the
 * world's data directory and Redis, killed when the test ends; answers once it listens. A first start
 * on a loaded box (CA checks, N workers) can take tens of seconds, hence the generous wait.
 */
async function startChildNode(w: ClusterWorld, workers: number, listenWithinMs: number) {
  const child = spawn(
    process.execPath,
    [
      GATEHOUSE_BIN,
      'start',
      '--data-dir',
      w.dataDir,
      '--cluster',
      w.redis.url,
      '--workers',
      String(workers),
      '--mqtt-port',
      '0',
      '--http-port',
      '0',
    ],
    { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  onTestFinished(() => void (child.exitCode === null && child.kill('SIGKILL')))
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const port = Number(
    await waitFor(
      () => /on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1],
      listenWithinMs,
      () => `the node's port:\n${stderr}`,
    ),
  )
  return { child, port }
}

const insights = (id: string) => `devices/${id}/insights`
// aedes-persistence-redis' encoding of what it stores (no types shipped)
const msgpack = createRequire(import.meta.url)('msgpack-lite') as { encode(value: unknown): Buffer }

describe.skipIf(!redisAvailable())('cluster: three nodes on one Redis and one data directory', () => {
  let w: ClusterWorld
  beforeAll(async () => {
    w = await startClusterWorld({
      limits: {
        connectRatePerClientId: { burst: CONNECT_BURST, ratePerSecond: 0.05 },
        maxQueuedMessages: MAX_QUEUED,
        maxQueuedBytes: MAX_QUEUED_BYTES,
      },
    })
  }, 30_000)
  afterAll(() => w?.close())
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

  it('a revocation made through node A closes the device on node C within 1 s, and every node refuses it', async () => {
    const creds = await w.provision('revoke-1')
    const onC = await connectDevice(port(2), creds)
    const closed = closedWithin(onC)
    const started = performance.now()
    await node(0).control.authority.revokeDevice('revoke-1', 'keyCompromise', 'operator:test')
    await closed
    expect(performance.now() - started).toBeLessThan(1000)
    for (let n = 0; n < 3; n++) expect((await attemptConnect(port(n), creds)).connack).toBe(5)
  })

  it('a settings change reaches devices on every node within 1 s', async () => {
    const devices = await Promise.all([0, 1, 2].map((n) => w.provision(`settings-${n}`)))
    const versions: number[][] = [[], [], []]
    for (let n = 0; n < 3; n++) {
      const creds = devices[n] as DeviceCredentials
      const client = await connectDevice(port(n), creds)
      client.on('message', (_t, payload) => (versions[n] as number[]).push(JSON.parse(payload.toString()).version))
      await client.subscribeAsync(`devices/${creds.deviceId}/settings`, { qos: 1 })
    }
    await waitFor(() => versions.every((v) => v.length > 0), 3000, 'the current documents')
    const started = performance.now()
    const views = await Promise.all(
      devices.map((d) => w.operator.settings.patchDevice(d.deviceId, { interval: 7 }, { actor: 'operator:test' })),
    )
    await waitFor(() => versions.every((v, n) => v.includes((views[n] as { version: number }).version)), 3000, 'the new versions')
    expect(performance.now() - started).toBeLessThan(1000)
  })

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

  it('a node killed with SIGKILL: its device reconnects to another node and its will goes out within the bound', async () => {
    const { child, port: childPort } = await startChildNode(w, 1, 45_000)
    const creds = await w.provision('killed-1')
    const will = { topic: 'devices/killed-1/telemetry/status', payload: Buffer.from('gone'), qos: 1 as const, retain: false }
    await connectDevice(childPort, creds, { will })
    const wills: string[] = []
    for (let n = 0; n < 3; n++) {
      node(n).broker.aedes.on('publish', (packet) => {
        if (packet.topic === will.topic) wills.push(packet.payload.toString())
      })
    }
    child.kill('SIGKILL')
    const killedAt = performance.now()
    expect((await attemptConnect(port(0), creds)).connack).toBe(0)
    await waitFor(() => wills.length > 0, WILL_BOUND_MS + 2000, "the will of the killed node's device")
    expect(performance.now() - killedAt).toBeLessThan(WILL_BOUND_MS)
    expect(wills).toEqual(['gone'])
  }, 75_000)

  it('the primary of --workers 2 killed with SIGKILL: the will of its device goes out within the bound', async () => {
    const { child, port: childPort } = await startChildNode(w, 2, 60_000)
    const creds = await w.provision('killed-2')
    const will = { topic: 'devices/killed-2/telemetry/status', payload: Buffer.from('gone'), qos: 1 as const, retain: false }
    const device = await connectDevice(childPort, creds, { will })
    const connectionClosed = new Promise<void>((resolve) => device.once('close', () => resolve()))
    // a subscriber on node A gets the will whichever node publishes it (the fan-out is Redis')
    const wills: string[] = []
    await new Promise<void>((resolve) =>
      node(0).broker.aedes.subscribe(
        will.topic,
        (packet, done) => {
          wills.push(packet.payload.toString())
          done()
        },
        resolve,
      ),
    )
    child.kill('SIGKILL')
    const killedAt = performance.now()
    // Its workers leave when their IPC channel closes (node:cluster exits a worker whose primary is gone),
    // but not at once. The device reconnects once its connection has closed, as a device does: reconnecting
    // before (what this test first did) took over the session still open on the dying worker, and a session
    // taken over leaves no will (closedBy 'takeover'), which is why the will did not go out with --workers 2.
    await connectionClosed
    expect((await attemptConnect(port(0), creds)).connack).toBe(0)
    await waitFor(() => wills.length > 0, WILL_BOUND_MS + 2000, "the will of the killed node's device")
    expect(performance.now() - killedAt).toBeLessThan(WILL_BOUND_MS)
    expect(wills).toEqual(['gone'])
  }, 90_000)

  it("a revoked device's will is removed cluster-wide: its node dies after the revocation and only the other device's will goes out", async () => {
    const { child, port: childPort } = await startChildNode(w, 1, 45_000)
    const wills: string[] = []
    for (let n = 0; n < 3; n++)
      node(n).broker.aedes.on('publish', (packet) => {
        if (packet.topic.endsWith('/telemetry/status')) wills.push(packet.payload.toString())
      })
    for (const id of ['will-revoked-1', 'will-kept-1']) {
      const will = { topic: `devices/${id}/telemetry/status`, payload: Buffer.from(`gone ${id}`), qos: 1 as const, retain: false }
      await connectDevice(childPort, await w.provision(id), { will })
    }
    const redis = new Redis(w.redis.url)
    onTestFinished(() => void redis.quit())
    const stored = async () => (await redis.lrange('will', 0, -1)).filter((k) => k.endsWith(':will-revoked-1')).length
    expect(await stored()).toBe(1)
    // the child is stopped (SIGSTOP) so that the revocation cannot close its session: its will stays stored.
    // The other nodes take the stopped child for dead about 1.5 s later (3 heartbeats) and claim its wills:
    // the revocation is committed at once, so whichever comes first (the drop on the revocation event or the
    // dead node's will checked against the registry) the revoked device's will never goes out. The check of
    // the stored will happens before the stop: after it, the claim may already have taken it.
    child.kill('SIGSTOP')
    await node(0).control.authority.revokeDevice('will-revoked-1', 'keyCompromise', 'operator:test')
    await waitFor(async () => (await stored()) === 0, 3000, "the revoked device's will removed from Redis")
    child.kill('SIGKILL')
    await waitFor(() => wills.includes('gone will-kept-1'), WILL_BOUND_MS + 2000, "the other device's will")
    expect(wills).not.toContain('gone will-revoked-1')
  }, 75_000)

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
})

describe('gatehouse start --cluster', () => {
  it('stops with GH_BROKER_CLUSTER_UNREACHABLE when Redis does not answer, naming the URL without its password', async () => {
    const res = await spawnCli(['start', '--data-dir', join(tempDir(), 'data'), '--mqtt-port', '0', '--http-port', '0'], {
      env: { GATEHOUSE_CLUSTER_REDIS_URL: 'redis://:hunter2@127.0.0.1:1' },
      // a first start makes the CA, then gives Redis its connect timeout: on a loaded box that is past 30 s
      timeoutMs: 80_000,
    })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('error GH_BROKER_CLUSTER_UNREACHABLE')
    expect(res.stderr).toContain('redis://:***@127.0.0.1:1')
    expect(res.stderr).not.toContain('hunter2')
  }, 90_000)
})
