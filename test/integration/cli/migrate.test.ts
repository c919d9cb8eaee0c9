import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { systemClock } from '../../../certs/index.ts'
import { createLogger } from '../../../logger.ts'
import { createApiKeyService } from '../../../provisioning/api-keys/api-key-service.ts'
import { dataDirLayout } from '../../../provisioning/index.ts'
import { migrations } from '../../../provisioning/store/migrations/index.ts'
import { PgDatabase } from '../../../provisioning/store/postgres/pg-database.ts'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { copySqliteToPostgres, REGISTRY_TABLES } from '../../../provisioning/store/postgres/sqlite-to-postgres.ts'
import { cryptoRandom } from '../../../certs/index.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { openssl, runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const available = postgresAvailable()
const ALLOW_LOOPBACK_ROUTES = { GATEHOUSE_ROUTES_ALLOW_PRIVATE_TARGETS: 'true' }

let server: PostgresServer
let root: string | undefined
let dataDir: string
let registry: string
let apiKeyToken: string
let databases = 0

/** a new empty database on the test's server, and its URL */
const newDatabase = () => server.createDatabase(`migrate_${++databases}`)

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function rowCounts(url: string): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const counts: Record<string, number> = {}
    for (const t of REGISTRY_TABLES) counts[t] = Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
    return counts
  })
}

/** how many tables the database holds: 0 when nothing (not even the schema) was made */
const tableCount = (url: string) =>
  withClient(url, async (c) =>
    Number((await c.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'")).rows[0].n),
  )

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

/** a value as both engines mean it: times as ISO-8601, flags as booleans, integers as numbers, text as is */
function normalise(value: unknown, type: string): unknown {
  if (value === null) return null
  if (type === 'timestamp with time zone') return new Date(value as string | Date).toISOString()
  if (type === 'boolean') return value === true || value === 1
  if (type === 'bigint' || type === 'integer') return Number(value)
  return value
}

async function cli(...args: string[]) {
  const res = await runCli([...args, '--data-dir', dataDir], ALLOW_LOOPBACK_ROUTES)
  expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0)
  return res
}

describe.runIf(available)('gatehouse migrate --from sqlite --to postgres (issue 13)', () => {
  beforeAll(async () => {
    server = await startPostgres()
    root = mkdtempSync(join(tmpdir(), 'gatehouse-migrate-'))
    dataDir = join(root, 'data')
    registry = dataDirLayout(dataDir).database
    const out = join(root, 'out')
    mkdirSync(out)
    // a single node's data directory, made by the operator's commands
    await cli('init')
    await cli('device', 'create', 'pump-1', '--group', 'pumps', '--label', 'site=north', '--label', 'floor=2', '--out', out)
    await cli('device', 'create', 'pump-2', '--group', 'pumps', '--out', out)
    await cli('device', 'create', 'cam-1', '--tier', 'premium', '--label', 'site=south', '--out', out)
    await cli('device', 'revoke', 'pump-2', '--reason', 'keyCompromise')
    await cli('settings', 'set', '--defaults', 'interval=30')
    await cli('settings', 'set', '--group', 'pumps', 'upload_secret=hunter22', 'threshold=4.5')
    await cli('settings', 'set', '--device', 'pump-1', 'threshold=5')
    await cli('claim', 'create', '--group', 'field', '--tokens', '2', '--out', join(out, 'claims'))
    apiKeyToken = (await cli('apikey', 'create', '--name', 'ops', '--scopes', 'devices:read')).stdout.trim().split(/\s+/).pop() as string
    await cli('tier', 'set', 'premium', 'broker.publishRate.ratePerSecond=50')
    await cli('device', 'limits', 'set', 'cam-1', 'broker.publishRate.burst=7')
    await cli('route', 'create', '--url', 'http://127.0.0.1:9/in', '--group', 'pumps')
    await cli('app', 'create', 'dash', '--groups', 'pumps', '--classes', 'telemetry', '--out', join(out, 'apps'))
    // what only a running broker writes (last seen, AI usage and insights), written as its stores write them
    const db = new Database(registry)
    db.prepare("UPDATE devices SET last_seen_at = '2026-12-01T10:00:00.123Z' WHERE id = 'pump-1'").run()
    db.prepare("INSERT INTO ai_usage VALUES ('pump-1', '2026-12-01', 3, 1200)").run()
    db.prepare(`INSERT INTO insights VALUES ('ins-1', 'pump-1', '2026-12-01T10:00:01.000Z', '{"summary":"ok"}')`).run()
    // an audit row deleted at the end: SQLite never hands its id out again, nor may PostgreSQL
    db.prepare("INSERT INTO audit_log (at, actor, action, subject, details) VALUES ('2026-12-01T10:00:02.000Z', 't', 'x', 'y', '{}')").run()
    db.prepare('DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)').run()
    db.close()
  }, 120_000)
  afterAll(async () => {
    await server?.stop()
    if (root) rmSync(root, { recursive: true, force: true })
  })

  it('knows every table the SQLite migrations make (a table left out of the copy fails here)', () => {
    const db = new Database(':memory:')
    for (const m of migrations) db.exec(m.sql)
    const made = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]
    )
      .map((r) => r.name)
      .sort()
    db.close()
    expect([...REGISTRY_TABLES].sort()).toEqual(made)
  })

  it('copies every row of every table, equal, in one run; the SQLite file is untouched and nothing is re-provisioned', async () => {
    const url = await newDatabase()
    const before = sha256(registry)
    const res = await runCli(['migrate', '--from', 'sqlite', '--to', 'postgres', '--data-dir', dataDir, '--json'], {
      GATEHOUSE_DATABASE_URL: url,
    })
    expect(res.code, res.stderr).toBe(0)
    expect(sha256(registry)).toBe(before)
    const summary = JSON.parse(res.stdout) as { tables: { table: string; rows: number }[]; rows: number; to: string }
    expect(summary.to).toBe(`postgres://127.0.0.1:${server.port}/migrate_${databases}`)
    expect(summary.tables.map((t) => t.table)).toEqual(REGISTRY_TABLES)
    for (const t of summary.tables) expect(res.stderr).toContain(`migrate: ${t.table}: ${t.rows} rows copied\n`)

    const source = new Database(registry, { readonly: true })
    try {
      await withClient(url, async (c) => {
        for (const table of REGISTRY_TABLES) {
          const types = new Map(
            (
              await c.query(
                'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
                [table],
              )
            ).rows.map((r) => [r.column_name as string, r.data_type as string]),
          )
          const norm = (row: Record<string, unknown>) =>
            JSON.stringify(Object.fromEntries([...types].map(([col, type]) => [col, normalise(row[col], type)])))
          const want = (source.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[]).map(norm).sort()
          const got = (await c.query(`SELECT * FROM ${table}`)).rows.map(norm).sort()
          expect(got, table).toEqual(want)
          expect(summary.tables.find((t) => t.table === table)?.rows, table).toBe(want.length)
        }
        // the data the issue names is there (the comparison above is not vacuous)
        const counts = await rowCounts(url)
        for (const t of ['devices', 'device_labels', 'certificates', 'audit_log', 'events', 'settings_layers', 'claims', 'claim_tokens'])
          expect(counts[t], t).toBeGreaterThan(0)
        for (const t of [
          'api_keys',
          'tier_limits',
          'device_limits',
          'telemetry_routes',
          'apps',
          'app_certificates',
          'ai_usage',
          'insights',
        ])
          expect(counts[t], t).toBe(1)
        const sealed = (await c.query("SELECT document FROM settings_layers WHERE scope = 'group:pumps'")).rows[0].document as string
        expect(sealed).toContain('"$enc"')
        expect(sealed).not.toContain('hunter22')

        // identities go on past every id SQLite handed out (its AUTOINCREMENT counters), so the feed's positions stay valid
        for (const [table, column] of [
          ['audit_log', 'id'],
          ['events', 'seq'],
        ] as const) {
          const counter = Number((source.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table) as { seq: number }).seq)
          const next = await c.query(
            `INSERT INTO ${table} (at, ${table === 'events' ? 'type, data' : 'actor, action, subject, details'}) VALUES (now(), 'a', 'b'${table === 'events' ? '' : ", 'c', 'd'"}) RETURNING ${column} AS id`,
          )
          expect(Number(next.rows[0].id), table).toBe(counter + 1)
          await c.query(`DELETE FROM ${table} WHERE ${column} = $1`, [next.rows[0].id])
        }
      })
    } finally {
      source.close()
    }

    // the API key still verifies, read by the PostgreSQL stores
    const db = await PgDatabase.open(url)
    try {
      const store = new PgRegistryStore(db)
      const apiKeys = createApiKeyService({
        store: store as never,
        apiKeys: store.apiKeys as never,
        clock: systemClock,
        random: cryptoRandom,
        log: createLogger({ level: 'silent' }),
      })
      expect(await apiKeys.verify(apiKeyToken)).toMatchObject({ name: 'ops', scopes: ['devices:read'] })
      await expect(apiKeys.verify(`${apiKeyToken.slice(0, -1)}x`)).rejects.toMatchObject({ code: 'GH_API_KEY_INVALID' })
    } finally {
      await db.close()
    }

    // every active device certificate in the registry still verifies against the data directory's CA
    const active = await withClient(
      url,
      async (c) => (await c.query("SELECT device_id, pem FROM certificates WHERE status = 'active'")).rows,
    )
    expect(active.map((r) => r.device_id).sort()).toEqual(['cam-1', 'pump-1'])
    for (const { device_id, pem } of active) {
      const file = join(tempDir(), `${device_id}.pem`)
      writeFileSync(file, pem)
      const verified = await openssl(['verify', '-CAfile', dataDirLayout(dataDir).chain, file])
      expect(verified.stdout + verified.stderr, device_id).toContain(': OK')
    }
  }, 60_000)

  it('refuses a second migrate into the same database, changing nothing', async () => {
    const url = await newDatabase()
    const env = { GATEHOUSE_DATABASE_URL: url }
    // the first names the database in the flag (no password in it: the server trusts loopback here)
    const first = await runCli(['migrate', '--from', 'sqlite', '--to', url, '--data-dir', dataDir])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toMatch(/^migrated \d+ rows in 21 tables from .*gatehouse\.db to postgres:\/\/127\.0\.0\.1:\d+\/migrate_\d+ /)
    const before = await rowCounts(url)
    const again = await runCli(['migrate', '--from', 'sqlite', '--to', 'postgres', '--data-dir', dataDir, '--json'], env)
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stderr.trim().split('\n').pop() as string)).toMatchObject({
      code: 'GH_MIGRATE_TARGET_NOT_EMPTY',
      message: expect.stringMatching(/rows in devices.*create a new database/),
    })
    expect(again.stderr).not.toContain('rows copied')
    expect(await rowCounts(url)).toEqual(before)
  }, 60_000)

  it('a connection cut in the middle of the copy leaves the target empty', async () => {
    const url = await newDatabase()
    const cut = copySqliteToPostgres(registry, url, {
      // the copy's own connection killed once the events are copied, before the tables after them
      onTable: async ({ table }) => {
        if (table === 'events') await server.terminate(await server.backendPids(`migrate_${databases}`, 'gatehouse-migrate'))
      },
    })
    await expect(cut).rejects.toMatchObject({ code: 'GH_STORE_UNREACHABLE' })
    expect(Object.values(await rowCounts(url)).every((n) => n === 0)).toBe(true)
  }, 60_000)

  it('a table that fails to copy (a constraint on the target) exits non-zero with nothing committed', async () => {
    const url = await newDatabase()
    // the schema first, then a trigger that fails the copy of the last table
    await (await PgDatabase.open(url)).close()
    await withClient(url, (c) =>
      c.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON app_certificates FOR EACH ROW EXECUTE FUNCTION refuse()`),
    )
    const res = await runCli(['migrate', '--from', 'sqlite', '--to', 'postgres', '--data-dir', dataDir], { GATEHOUSE_DATABASE_URL: url })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('migrate: apps: 1 rows copied')
    expect(res.stderr).toContain('refused by the test')
    expect(Object.values(await rowCounts(url)).every((n) => n === 0)).toBe(true)
  }, 60_000)

  it('refuses a password in --to, a missing URL, and a source at another schema version, copying nothing', async () => {
    const url = await newDatabase()
    const withPassword = url.replace('://', '://u:s3cret@')
    const flag = await runCli(['migrate', '--from', 'sqlite', '--to', withPassword, '--data-dir', dataDir])
    expect(flag.code).toBe(1)
    expect(flag.stderr).toMatch(/GH_MIGRATE_TARGET_INVALID: invalid migrate target: the --to URL holds a password.*GATEHOUSE_DATABASE_URL/)
    expect(flag.stderr).not.toContain('s3cret')
    const none = await runCli(['migrate', '--from', 'sqlite', '--to', 'postgres', '--data-dir', dataDir])
    expect(none.stderr).toMatch(
      /GH_MIGRATE_TARGET_INVALID: invalid migrate target: --to postgres takes the database URL from GATEHOUSE_DATABASE_URL/,
    )
    // a URL without password in the flag is accepted (the password, if any, from ~/.pgpass)
    const old = tempDir()
    copyFileSync(registry, dataDirLayout(old).database)
    const db = new Database(dataDirLayout(old).database)
    db.pragma('user_version = 10')
    db.close()
    const stale = await runCli(['migrate', '--from', 'sqlite', '--to', url, '--data-dir', old])
    expect(stale.code).toBe(1)
    expect(stale.stderr).toMatch(/GH_MIGRATE_SOURCE_INVALID: .*schema version is 10.*gatehouse start/)
    expect(await tableCount(url)).toBe(0)
    const missing = await runCli(['migrate', '--from', 'sqlite', '--to', url, '--data-dir', tempDir()])
    expect(missing.stderr).toMatch(/GH_DATA_DIR: .*no registry to migrate/)
  }, 60_000)
})
