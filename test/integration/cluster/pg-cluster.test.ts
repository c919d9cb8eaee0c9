import { connect, createServer, type Socket } from 'node:net'
import { hostname } from 'node:os'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { redisAvailable } from '../../helpers/redis-server.ts'
import { waitFor } from '../../helpers/wait.ts'
import { CLUSTER_CASES_CONFIG, clusterCases } from './cluster-cases.ts'
import { startClusterWorld, type ClusterWorld } from './cluster-world.ts'

// both checked (each warns when skipped, and fails in CI where .ci/run installs both)
const engines = [postgresAvailable(), redisAvailable()].every(Boolean)
const DATABASE = 'pg_cluster'
/** the application_name of each node's LISTEN connection (open-registry.ts, PgDatabase.listen): the nodes here share a pid */
const LISTEN_APP = `gatehouse/${hostname().slice(0, 40)}:${process.pid}-listen`
/**
 * The change feed's safety poll, at its maximum here: every bound below is under it, so only LISTEN's
 * wake-up (and its catch-up after a reconnect) can meet them. The default 1 s poll is postgres-start.test.ts's.
 */
const POLL_MS = 5000

/**
 * A loopback TCP relay to PostgreSQL for one node: while `refusing`, each new connection is closed at once
 * (the database out of that node's reach) and the open ones carry on; the other nodes do not go through it.
 */
async function startRelay(targetPort: number) {
  const sockets = new Set<Socket>()
  const state = { refusing: false }
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  }
  const server = createServer((inbound) => {
    if (state.refusing) return void inbound.destroy()
    const outbound = connect(targetPort, '127.0.0.1')
    for (const socket of [inbound, outbound]) {
      track(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        inbound.destroy()
        outbound.destroy()
      })
    }
    inbound.pipe(outbound).pipe(inbound)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    refuse: (on: boolean) => void (state.refusing = on),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

describe.runIf(engines)('cluster: three nodes on one Redis and one PostgreSQL (issue 13)', () => {
  let server: PostgresServer
  let w: ClusterWorld
  let databaseUrl: string
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined
  beforeAll(async () => {
    server = await startPostgres()
    databaseUrl = await server.createDatabase(DATABASE)
    w = await startClusterWorld({ ...CLUSTER_CASES_CONFIG, databaseUrl, changeFeedIntervalMs: POLL_MS })
  }, 60_000)
  afterAll(async () => {
    await w?.close()
    await relay?.close()
    await server?.stop()
  })
  const node = (i: number) => w.nodes[i] as ClusterWorld['nodes'][number]
  const port = (i: number) => node(i).mqtt.port
  const listenPids = () => server.backendPids(DATABASE, LISTEN_APP)

  it('a revocation made through node A closes the device on node C within 1 s, and every node refuses its reconnect', async () => {
    const creds = await w.provision('pg-revoke-1')
    const onC = await connectDevice(port(2), creds)
    const closed = closedWithin(onC)
    const started = performance.now()
    await node(0).control.authority.revokeDevice('pg-revoke-1', 'keyCompromise', 'operator:test')
    await closed
    expect(performance.now() - started).toBeLessThan(1000)
    for (let n = 0; n < 3; n++) expect((await attemptConnect(port(n), creds)).connack).toBe(5)
  })

  it("a settings change through node A's API reaches devices on all nodes within 1 s, and on node B again after its LISTEN connection is killed", async () => {
    // node B starts again, reaching PostgreSQL through a relay; its LISTEN backend is the one that appears
    relay = await startRelay(server.port)
    const before = new Set(await listenPids())
    await w.restartNode(1, { databaseUrl: databaseUrl.replace(`:${server.port}/`, `:${relay.port}/`) })
    let listenB: number | undefined
    await waitFor(
      async () => {
        const now = await listenPids()
        listenB = now.find((pid) => !before.has(pid))
        return listenB !== undefined && now.length === 3
      },
      5000,
      "node B's LISTEN connection, and the others'",
    )

    const devices = await Promise.all([0, 1, 2].map((n) => w.provision(`pg-settings-${n}`)))
    const received: { version: number; settings: { rate?: number } }[][] = [[], [], []]
    for (let n = 0; n < 3; n++) {
      const creds = devices[n] as DeviceCredentials
      const client = await connectDevice(port(n), creds)
      client.on('message', (_t, payload) => (received[n] as unknown[]).push(JSON.parse(payload.toString())))
      await client.subscribeAsync(`devices/${creds.deviceId}/settings`, { qos: 1 })
    }
    await waitFor(() => received.every((r) => r.length > 0), 3000, 'the current documents')
    const has = (n: number, rate: number) => (received[n] ?? []).some((d) => d.settings.rate === rate)

    const { token } = await node(0).control.apiKeys.create(
      { name: 'pg-cluster', scopes: ['settings:write', 'settings:read'] },
      'operator:test',
    )
    const patchDefaults = async (rate: number) => {
      const headers = { authorization: `Bearer ${token}` }
      const current = await fetch(`${node(0).http.url}/v1/settings/defaults`, { headers })
      expect(current.status).toBe(200)
      const res = await fetch(`${node(0).http.url}/v1/settings/defaults`, {
        method: 'PATCH',
        headers: { ...headers, 'content-type': 'application/merge-patch+json', 'if-match': current.headers.get('etag') as string },
        body: JSON.stringify({ rate }),
      })
      expect(res.status, await res.clone().text()).toBe(200)
    }

    let started = performance.now()
    await patchDefaults(1)
    await waitFor(() => [0, 1, 2].every((n) => has(n, 1)), 3000, 'rate 1 on every node')
    expect(performance.now() - started).toBeLessThan(1000)

    // B's LISTEN is cut and kept from reconnecting (its relay refuses new connections) while the change
    // commits: no notification can reach B, only its catch-up by id once LISTEN is back (the poll is 5 s away)
    const cut = relay
    cut.refuse(true)
    onTestFinished(() => cut.refuse(false))
    await server.terminate([listenB as number])
    await waitFor(async () => (await listenPids()).length === 2, 3000, "node B's LISTEN gone")
    await patchDefaults(2)
    await waitFor(() => has(0, 2) && has(2, 2), 1000, 'rate 2 on nodes A and C')
    cut.refuse(false)
    started = performance.now()
    // LISTEN retries with back-off (100 ms doubling): its next try comes within about a second
    await waitFor(() => has(1, 2), 3000, "rate 2 on node B, after its LISTEN's reconnect")
    expect(performance.now() - started).toBeLessThan(2500)
    expect(await listenPids()).toHaveLength(3)
  }, 30_000)

  clusterCases(() => w)
})
