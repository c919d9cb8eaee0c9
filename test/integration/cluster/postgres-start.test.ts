import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { dataDirLayout } from '../../../provisioning/index.ts'
import { startGatehouseProcess } from '../../helpers/gatehouse-process.ts'
import { attemptConnect, closedWithin, connectDevice, readBundleCredentials } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { redisAvailable, startRedis } from '../../helpers/redis-server.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

const available = postgresAvailable()
let server: PostgresServer

/** how many tables the database holds (0: not even the schema) */
async function tableCount(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return Number((await client.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'")).rows[0].n)
  } finally {
    await client.end()
  }
}

describe.runIf(available)('gatehouse start and the CLI on PostgreSQL (issue 13)', () => {
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
  })

  it('start with GATEHOUSE_DATABASE_URL: the CLI (another process than the broker) creates a device that connects, a settings change reaches it, a revoke closes it within 1 s and its reconnect is refused', async () => {
    const url = await server.createDatabase('start_1')
    const env = { GATEHOUSE_DATABASE_URL: url }
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const out = join(dir, 'devices')
    // start on an empty database: it applies the migrations; the CA and keys go to the data directory
    const gatehouse = await startGatehouseProcess(dataDir, env)
    expect(await tableCount(url)).toBeGreaterThan(0)
    expect(existsSync(dataDirLayout(dataDir).chain)).toBe(true)

    // the CLI runs in this process (runCli): another process than the broker's, as an operator's would be
    const created = await runCli(['device', 'create', 'pump-1', '--out', out, '--data-dir', dataDir], env)
    expect(created.code, created.stderr).toBe(0)
    const client = await connectDevice(gatehouse.port, readBundleCredentials(out, 'pump-1'))
    const documents: { settings?: { interval?: number } }[] = []
    client.on('message', (_topic, payload) => documents.push(JSON.parse(payload.toString())))
    await client.subscribeAsync('devices/pump-1/settings', { qos: 1 })
    const set = await runCli(['settings', 'set', '--device', 'pump-1', 'interval=7', '--data-dir', dataDir], env)
    expect(set.code, set.stderr).toBe(0)
    await waitFor(() => documents.some((d) => d.settings?.interval === 7), 5000, 'the settings document with interval 7')

    const closed = closedWithin(client)
    const revoke = await runCli(['device', 'revoke', 'pump-1', '--data-dir', dataDir], env)
    const revokedAt = performance.now()
    expect(revoke.code, revoke.stderr).toBe(0)
    await closed
    // the feed polls once a second on PostgreSQL: within 1 s of the CLI's exit is LISTEN's wake-up
    expect(performance.now() - revokedAt).toBeLessThan(1000)
    expect((await attemptConnect(gatehouse.port, readBundleCredentials(out, 'pump-1'))).connack).toBe(5)

    // the registry is PostgreSQL's: the device is there, and no SQLite registry was made in the data directory
    const shown = await runCli(['device', 'show', 'pump-1', '--json', '--data-dir', dataDir], env)
    expect(shown.code, shown.stderr).toBe(0)
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: 'pump-1', status: 'revoked' })
    const listed = await runCli(['device', 'list', '--json', '--data-dir', dataDir], env)
    expect((JSON.parse(listed.stdout) as { id: string }[]).map((d) => d.id)).toEqual(['pump-1'])
    expect(existsSync(dataDirLayout(dataDir).database)).toBe(false)

    gatehouse.child.kill('SIGTERM')
    expect(await gatehouse.exited).toBe(0)
  }, 60_000)

  it('init on an empty database applies the migrations; device, ca rotate, ca show, check and audit work on it without a broker', async () => {
    const url = await server.createDatabase('init_1')
    const dir = tempDir()
    // ca rotate on PostgreSQL seals the new issuing key for the other nodes with the CA sync secret
    const secretFile = join(dir, 'ca-sync.key')
    writeFileSync(secretFile, randomBytes(32), { mode: 0o600 })
    const env = { GATEHOUSE_DATABASE_URL: url, GATEHOUSE_CA_SYNC_SECRET_FILE: secretFile }
    const dataDir = join(dir, 'data')
    expect(await tableCount(url)).toBe(0)
    const init = await runCli(['init', '--data-dir', dataDir], env)
    expect(init.code, init.stderr).toBe(0)
    expect(await tableCount(url)).toBeGreaterThan(0)
    const created = await runCli(['device', 'create', 'cam-1', '--out', join(tempDir(), 'out'), '--data-dir', dataDir], env)
    expect(created.code, created.stderr).toBe(0)
    // ca rotate, ca show and check use the same registry
    const rotated = await runCli(['ca', 'rotate', '--data-dir', dataDir], env)
    expect(rotated.code, rotated.stderr).toBe(0)
    expect((await runCli(['ca', 'show', '--data-dir', dataDir], env)).code).toBe(0)
    const check = await runCli(['check', '--json', '--data-dir', dataDir], env)
    // its one finding is the test's unencrypted CA key; opening SQLite instead would make the file checked below
    expect(JSON.parse(check.stdout)).toMatchObject({ counts: { critical: 0 } })
    expect(check.stderr).not.toMatch(/GH_STORE_/)
    const audit = JSON.parse((await runCli(['audit', '--json', '--data-dir', dataDir], env)).stdout) as { action: string }[]
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['ca.created', 'device.created', 'ca.rotated']))
    // a node on it polls its change feed once a second (LISTEN wakes it), unless changeFeedIntervalMs says otherwise
    for (const [flags, intervalMs] of [
      [{}, 1000],
      [{ changeFeedIntervalMs: 300 }, 300],
    ] as const) {
      const node = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false, ...flags }, env), {
        log: pino({ level: 'silent' }),
      })
      expect(node.feed.status().intervalMs).toBe(intervalMs)
      await node.close()
    }
    // status counts the devices of the PostgreSQL registry (nothing listens on port 1: not running, exit 2)
    const status = await runCli(['status', '--json', '--http-port', '1', '--data-dir', dataDir], env)
    expect(status.code, status.stderr).toBe(2)
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, devices: { active: 1, disabled: 0, revoked: 0 } })
    // no command opened a SQLite registry (SqliteRegistryStore makes the file when it opens)
    expect(existsSync(dataDirLayout(dataDir).database)).toBe(false)
  }, 60_000)

  it('refuses a password in --database, and says a missing database or a refused connection cleanly (exit 1, no stack)', async () => {
    const dataDir = join(tempDir(), 'data')
    const withPassword = `postgres://u:s3cret@127.0.0.1:${server.port}/start_1`
    // in this process (runCli): each of these fails before anything listens
    const flag = await runCli(['start', '--database', withPassword, '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/GH_CONFIG_INVALID: --database holds a password.*GATEHOUSE_DATABASE_URL.*~\/\.pgpass/)
    expect(flag.stderr).not.toContain('s3cret')
    expect(existsSync(dataDir)).toBe(false)

    const url = await server.createDatabase('errors_1')
    const startWith = (databaseUrl: string) =>
      runCli(['start', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'], { GATEHOUSE_DATABASE_URL: databaseUrl })
    // trust authentication on loopback: the login passes (the password is not asked for), the database is missing
    const missing = await startWith(url.replace('@', ':s3cret@').replace(/errors_1$/, 'nowhere'))
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^error GH_STORE_DATABASE_MISSING: .*nowhere/m)
    expect(missing.stderr).not.toMatch(/s3cret|\n\s+at /)
    const unknownRole = await startWith(`postgres://nobody:s3cret@127.0.0.1:${server.port}/errors_1`)
    expect(unknownRole.code).toBe(1)
    expect(unknownRole.stderr).toMatch(/^error GH_STORE_AUTH_FAILED: .*role "nobody" does not exist/m)
    expect(unknownRole.stderr).not.toMatch(/s3cret|\n\s+at /)

    const refused = await runCli(['device', 'list', '--data-dir', dataDir], {
      GATEHOUSE_DATABASE_URL: 'postgres://u@127.0.0.1:1/gatehouse',
    })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^error GH_STORE_CONNECTION_REFUSED: /m)
    expect(refused.stderr).not.toMatch(/\n\s+at /)
  }, 60_000)

  it.runIf(redisAvailable())(
    'two nodes on one Redis and one PostgreSQL: a revocation through node A closes the device on node B within 1 s, and both refuse it',
    async () => {
      const redis = await startRedis()
      try {
        const env = { GATEHOUSE_DATABASE_URL: await server.createDatabase('two_nodes') }
        const dir = tempDir()
        const dataDir = join(dir, 'data')
        const out = join(dir, 'devices')
        const cluster = ['--cluster', redis.url, '--workers', '1']
        // one after the other: the first makes the data directory (CA) and the schema
        const a = await startGatehouseProcess(dataDir, env, cluster)
        const b = await startGatehouseProcess(dataDir, env, cluster)
        const apiA = /HTTP API on (http:\/\/[^;\s]+);/.exec(a.stderr())?.[1]
        expect(apiA).toBeDefined()
        expect((await runCli(['device', 'create', 'valve-1', '--out', out, '--data-dir', dataDir], env)).code).toBe(0)
        const key = await runCli(['apikey', 'create', '--name', 'ops', '--scopes', 'devices:revoke', '--data-dir', dataDir], env)
        expect(key.code, key.stderr).toBe(0)
        const creds = readBundleCredentials(out, 'valve-1')
        const onB = await connectDevice(b.port, creds)

        const closed = closedWithin(onB)
        const res = await fetch(`${apiA}/v1/devices/valve-1/revoke`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key.stdout.trim()}`, 'content-type': 'application/json' },
          body: '{}',
        })
        const revokedAt = performance.now()
        expect(res.status, await res.text()).toBe(200)
        await closed
        expect(performance.now() - revokedAt).toBeLessThan(1000)
        for (const port of [a.port, b.port]) expect((await attemptConnect(port, creds)).connack).toBe(5)
        // the nodes shared the registry through PostgreSQL, not the data directory's SQLite file
        expect(existsSync(dataDirLayout(dataDir).database)).toBe(false)

        for (const node of [a, b]) node.child.kill('SIGTERM')
        expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0])
      } finally {
        await redis.stop()
      }
    },
    60_000,
  )
})
