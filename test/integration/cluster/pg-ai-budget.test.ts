import mqtt from 'mqtt'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { chatCompletion, startHttpStub } from '../../helpers/ai-stubs.ts'
import { mqttOptions } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { redisAvailable } from '../../helpers/redis-server.ts'
import { waitFor } from '../../helpers/wait.ts'
import { startClusterWorld } from './cluster-world.ts'

const engines = [postgresAvailable(), redisAvailable()].every(Boolean)
/** the device's daily AI requests: under what it sends through the three nodes together */
const BUDGET = 120
/** telemetry messages the device sends through each node (one provider request each: a window of 1) */
const PER_NODE = 60

describe.runIf(engines)('cluster: AI spends of one device through three nodes on one PostgreSQL (issue 13)', () => {
  let server: PostgresServer
  let databaseUrl: string
  beforeAll(async () => {
    server = await startPostgres()
    databaseUrl = await server.createDatabase('pg_ai_budget')
  }, 60_000)
  afterAll(() => server?.stop())

  it("telemetry handed to all three nodes' AI bridges at once never spends more than the daily budget, and the registry's row says so", async () => {
    // The provider: a loopback server speaking OpenAI's chat-completions wire format, counting requests. It
    // answers the three nodes together (once a request of each waits, or 100 ms after the first when fewer
    // are busy), so their bridges go on to their next request, and lease the device's day, at the same moment.
    const waiting: (() => void)[] = []
    let timer: NodeJS.Timeout | undefined
    const releaseAll = () => {
      clearTimeout(timer)
      timer = undefined
      for (const go of waiting.splice(0)) go()
    }
    onTestFinished(releaseAll)
    const stub = await startHttpStub(async () => {
      await new Promise<void>((resolve) => {
        waiting.push(resolve)
        if (waiting.length >= 3) releaseAll()
        else timer ??= setTimeout(releaseAll, 100)
      })
      return chatCompletion({ summary: 'ok', anomalies: [] })
    })
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

    // The device hands a burst to node A, moves to B (its session there closes A's), hands B a burst, then C.
    // Each node's bridge keeps working through what it took after the device left, so the three bridges
    // lease the device's day from the registry at the same time.
    const sendThrough = async (n: number, creds: DeviceCredentials) => {
      const port = (w.nodes[n] as (typeof w.nodes)[number]).mqtt.port
      const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, mqttOptions(creds, { reconnectPeriod: 0 }))
      client.on('error', () => {})
      onTestFinished(() => void client.end(true))
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve())
        client.once('close', () => reject(new Error(`closed before CONNACK on node ${n}`)))
      })
      await Promise.all(
        Array.from({ length: PER_NODE }, (_, i) =>
          client.publishAsync('devices/spender-1/telemetry', JSON.stringify({ n: i, temp: 20 + i }), { qos: 1 }),
        ),
      )
    }
    for (const n of [0, 1, 2]) await sendThrough(n, creds)
    const bridges = w.nodes.map((node) => node.ai as NonNullable<typeof node.ai>)
    await waitFor(
      () => bridges.reduce((sum, b) => sum + b.stats().received, 0) === 3 * PER_NODE,
      20_000,
      () => `all ${3 * PER_NODE} messages handed to the bridges`,
    )
    await Promise.all(bridges.map((b) => b.idle()))
    await Promise.all(bridges.map((b) => b.flushUsage()))

    expect(stub.requests.length).toBeLessThanOrEqual(BUDGET)
    // every node got some of it: the three did spend through their own bridges
    for (const b of bridges) expect(b.stats().providers.openai?.calls ?? 0).toBeGreaterThan(0)
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    onTestFinished(() => db.end())
    const row = (await db.query("SELECT requests FROM ai_usage WHERE device_id = 'spender-1'")).rows[0] as { requests: string }
    expect(Number(row.requests)).toBe(stub.requests.length)
    expect(Number(row.requests)).toBeLessThanOrEqual(BUDGET)
  }, 90_000)
})
