import mqtt from 'mqtt'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { chatCompletion, startHttpStub } from '../../helpers/ai-stubs.ts'
import { mqttOptions } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { redisAvailable } from '../../helpers/redis-server.ts'
import { waitFor } from '../../helpers/wait.ts'
import { startClusterWorld } from './cluster-world.ts'

const engines = [postgresAvailable(), redisAvailable()].every(Boolean)
/** the device's daily AI requests (a lease slice of 1: each request leases its own) */
const BUDGET = 30

describe.runIf(engines)('cluster: AI spends of one device through three nodes on one PostgreSQL (issue 13)', () => {
  let server: PostgresServer
  let databaseUrl: string
  beforeAll(async () => {
    server = await startPostgres()
    databaseUrl = await server.createDatabase('pg_ai_budget')
  }, 60_000)
  afterAll(() => server?.stop())

  it("three nodes' AI bridges leasing the device's last request at the same moment grant it once: the row lock makes them take turns", async () => {
    // The provider: a loopback server speaking OpenAI's chat-completions wire format, counting requests
    const stub = await startHttpStub(() => chatCompletion({ summary: 'ok', anomalies: [] }))
    const limits = { requestsPerMinute: 100_000, burst: 10_000, dailyRequests: BUDGET, dailyTokens: 1_000_000_000 }
    const w = await startClusterWorld({
      databaseUrl,
      aiEnabled: true,
      ai: {
        windowing: { messages: 1 },
        // no settlement during the test: each node holds what it leased, as between two flushes
        usageFlushSeconds: 3600,
        providers: { openai: { baseUrl: `${stub.url}/v1`, model: 'test-model' } },
        tiers: { standard: { provider: 'openai', limits } },
      },
    })
    onTestFinished(() => w.close())
    const creds = await w.provision('spender-1')
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    onTestFinished(() => db.end())
    const requestsInRow = async () =>
      Number(((await db.query("SELECT requests FROM ai_usage WHERE device_id = 'spender-1'")).rows[0] as { requests: string }).requests)

    // The device hands `count` telemetry messages to node n over MQTT (its session there closes the one before)
    const sendThrough = async (n: number, count: number, from: number) => {
      const port = (w.nodes[n] as (typeof w.nodes)[number]).mqtt.port
      const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, mqttOptions(creds, { reconnectPeriod: 0 }))
      client.on('error', () => {})
      onTestFinished(() => void client.end(true))
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve())
        client.once('close', () => reject(new Error(`closed before CONNACK on node ${n}`)))
      })
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          client.publishAsync('devices/spender-1/telemetry', JSON.stringify({ n: from + i, temp: 20 }), { qos: 1 }),
        ),
      )
    }
    const bridges = w.nodes.map((node) => node.ai as NonNullable<typeof node.ai>)
    const handed = (total: number) =>
      waitFor(
        () => bridges.reduce((sum, b) => sum + b.stats().received, 0) === total,
        20_000,
        () => `all ${total} messages handed to the bridges`,
      )

    // 1. Through A, B and C in turn the device spends all of its day but one request
    await sendThrough(0, 10, 0)
    await sendThrough(1, 10, 10)
    await sendThrough(2, BUDGET - 21, 20)
    await handed(BUDGET - 1)
    await Promise.all(bridges.map((b) => b.idle()))
    expect(await requestsInRow()).toBe(BUDGET - 1)
    expect(stub.requests.length).toBe(BUDGET - 1)

    // 2. The last request, asked for by all three nodes at once. The test holds the day's row locked (as a
    // lease in flight on a fourth connection would) while the device hands one message to each node, until
    // each node's lease transaction waits on that row; then lets go. So the three leases are in flight
    // together, every run: with the lease's `SELECT ... FOR UPDATE` they wait before reading and then take
    // turns (one grant); without it each reads BUDGET - 1 before waiting, and all three would grant one.
    // (its own connection: pg_stat_activity, read below, is a snapshot that a transaction keeps until it ends)
    const holder = new pg.Client({ connectionString: databaseUrl })
    await holder.connect()
    onTestFinished(() => holder.end())
    await holder.query('BEGIN')
    await holder.query("SELECT requests FROM ai_usage WHERE device_id = 'spender-1' FOR UPDATE")
    for (const n of [0, 1, 2]) await sendThrough(n, 1, 100 + n)
    await waitFor(
      async () => {
        const r = await db.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ai_usage%'")
        return Number((r.rows[0] as { n: string }).n) === 3
      },
      10_000,
      "the three nodes' leases waiting on the day's row",
    )
    await holder.query('COMMIT')
    await handed(BUDGET + 2)
    await Promise.all(bridges.map((b) => b.idle()))
    await Promise.all(bridges.map((b) => b.flushUsage()))

    // one of the three got the last request; the other two were refused for the day
    expect(stub.requests.length).toBe(BUDGET)
    expect(bridges.reduce((sum, b) => sum + b.stats().throttled, 0)).toBe(2)
    expect(await requestsInRow()).toBe(BUDGET)
    // every node spent through its own bridge
    for (const b of bridges) expect(b.stats().providers.openai?.calls ?? 0).toBeGreaterThan(0)
  }, 60_000)
})
