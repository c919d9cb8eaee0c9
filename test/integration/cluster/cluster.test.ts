import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { redisAvailable } from '../../helpers/redis-server.ts'
import { GATEHOUSE_BIN, spawnCli } from '../../helpers/run-cli.ts'
import { WILL_BOUND_MS } from '../../../broker/cluster.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { CLUSTER_CASES_CONFIG, clusterCases } from './cluster-cases.ts'
import { startClusterWorld, type ClusterWorld } from './cluster-world.ts'

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

// the cases of cluster-cases.ts, and those that are SQLite's here (pg-cluster.test.ts has their PostgreSQL twins; the
// children `gatehouse start` runs on PostgreSQL are postgres-start.test.ts's)
describe.skipIf(!redisAvailable())('cluster: three nodes on one Redis and one data directory', () => {
  let w: ClusterWorld
  beforeAll(async () => {
    w = await startClusterWorld(CLUSTER_CASES_CONFIG)
  }, 30_000)
  afterAll(() => w?.close())
  const port = (node: number) => (w.nodes[node] as ClusterWorld['nodes'][number]).mqtt.port
  const node = (i: number) => w.nodes[i] as ClusterWorld['nodes'][number]

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

  clusterCases(() => w)
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
