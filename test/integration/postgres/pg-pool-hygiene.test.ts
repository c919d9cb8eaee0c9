import { hostname } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { initControlPlane, openControlPlane } from '../../../provisioning/index.ts'
import { PENDING_ROTATION_KEY } from '../../../provisioning/ca/rotation-journal.ts'
import { attemptConnect } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

/** this process's application_name on PostgreSQL (open-registry.ts) */
const NAME = `gatehouse/${hostname().slice(0, 40)}:${process.pid}`

/** A pino logger whose lines the test reads. */
function capturedLog() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { log, lines }
}

describe.runIf(postgresAvailable())('the PostgreSQL registry: named connections, bounded statements, no pool left open (issue 13)', () => {
  let server: PostgresServer
  let n = 0
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(() => server?.stop())
  const database = async () => {
    const name = `pool_${++n}`
    return { name, url: await server.createDatabase(name) }
  }
  const admin = async (url: string) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    onTestFinished(() => client.end())
    return client
  }
  const appNames = async (url: string, datname: string) =>
    (
      await (
        await admin(url)
      ).query<{ application_name: string }>(
        "SELECT application_name FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'gatehouse%' ORDER BY 1",
        [datname],
      )
    ).rows.map((r) => r.application_name)

  it("a node's connections name it (gatehouse/<host>:<pid>, LISTEN's with -listen); a statement past databaseStatementTimeoutMs fails with GH_STORE_TIMEOUT, the CONNECT gets 'server unavailable' and the next one is accepted", async () => {
    const db = await database()
    const { log, lines } = capturedLog()
    const dataDir = join(tempDir(), 'data')
    const config = { dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false, databaseUrl: db.url, databaseStatementTimeoutMs: 300 }
    const node = await startGatehouse(loadConfig(config, {}), { log })
    onTestFinished(() => node.close())
    await waitFor(async () => (await appNames(db.url, db.name)).includes(`${NAME}-listen`), 5000, "the node's LISTEN connection")
    expect(new Set(await appNames(db.url, db.name))).toEqual(new Set([NAME, `${NAME}-listen`]))

    const issued = await node.control.authority.createDevice({ id: 'slow-1' }, 'operator:test')
    const creds = { deviceId: 'slow-1', cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem }
    // an operator's transaction holds the registry's tables: the CONNECT's lookup waits behind it until its statement times out
    const holder = await admin(db.url)
    await holder.query('BEGIN')
    await holder.query('LOCK TABLE devices, certificates IN ACCESS EXCLUSIVE MODE')
    const started = performance.now()
    expect((await attemptConnect(node.mqtt.port, creds)).connack).toBe(3)
    expect(performance.now() - started).toBeLessThan(3000)
    const failed = lines.find((l) => l.msg === 'device lookup failed')
    expect((failed?.err as { code?: string } | undefined)?.code).toBe('GH_STORE_TIMEOUT')
    await holder.query('ROLLBACK')
    expect((await attemptConnect(node.mqtt.port, creds)).connack).toBe(0)
  }, 60_000)

  it('openControlPlane closes the registry when a later step fails (a corrupt CA rotation plan): no connection stays open', async () => {
    const db = await database()
    const dataDir = join(tempDir(), 'data')
    const log = pino({ level: 'silent' })
    await initControlPlane(dataDir, {}, { log, databaseUrl: db.url }, 'operator:test')
    const operator = await openControlPlane(dataDir, {}, { log, databaseUrl: db.url })
    await operator.store.setMeta(PENDING_ROTATION_KEY, 'not a plan')
    await operator.close()
    await waitFor(async () => (await appNames(db.url, db.name)).length === 0, 5000, 'no connection of the operator left')

    await expect(openControlPlane(dataDir, {}, { log, databaseUrl: db.url })).rejects.toMatchObject({ code: 'GH_CA_ROTATION_PLAN_CORRUPT' })
    // the failed open ended its pool before it rejected: the server may take a moment to drop the backends
    await waitFor(async () => (await appNames(db.url, db.name)).length === 0, 2000, 'no connection of the failed open left')
  }, 60_000)

  it("close() settles once the insights' last write and the registry's close are done", async () => {
    const db = await database()
    const dataDir = join(tempDir(), 'data')
    const log = pino({ level: 'silent' })
    await initControlPlane(dataDir, {}, { log, databaseUrl: db.url }, 'operator:test')
    const control = await openControlPlane(dataDir, {}, { log, databaseUrl: db.url })
    await control.authority.createDevice({ id: 'insight-1' }, 'operator:test')
    const usage = { requests: 1, promptTokens: 1, completionTokens: 1, totalTokens: 2 }
    const insight = {
      type: 'insight' as const,
      id: 'i1',
      deviceId: 'insight-1',
      provider: 'local',
      model: 'm',
      summary: 'kept at close',
      anomalies: [],
      at: new Date().toISOString(),
      usage,
    }
    await control.aiUsage.append(insight) // held in the write-behind, written at close
    const check = await admin(db.url) // opened before: read at once after close settles
    await control.close()
    // settled: the insight is in the database, and the pool has ended (its backends leave as the server notices)
    expect((await check.query('SELECT id FROM insights')).rows).toEqual([{ id: 'i1' }])
    await waitFor(async () => (await appNames(db.url, db.name)).length === 0, 2000, 'no connection of the closed control plane left')
  }, 60_000)
})
