import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { waitFor } from './wait.ts'

/** Debian's PostgreSQL 15 (installed by .ci/run); the PostgreSQL tests start their own server on a loopback port. */
const BIN = '/usr/lib/postgresql/15/bin'
const run = promisify(execFile)

/**
 * Whether the PostgreSQL tests can run: true when PostgreSQL 15's binaries are installed. Without them the
 * tests are skipped with a message on a developer's machine, and fail in CI (process.env.CI set), where
 * they must run.
 */
export function postgresAvailable(): boolean {
  if (existsSync(join(BIN, 'pg_ctl'))) return true
  if (process.env.CI) throw new Error(`${BIN}/pg_ctl is missing: .ci/run installs postgresql, and CI must run the PostgreSQL tests`)
  console.warn(`PostgreSQL tests skipped: ${BIN} is not there (apt-get install postgresql-15)`)
  return false
}

export interface PostgresServer {
  port: number
  /** how long the copy of the template (and, the first time on a machine, initdb) and the start took (ms) */
  startMs: number
  /** a new database on this server, empty or a copy of `template` (a database nobody is connected to); its connection URL */
  createDatabase(name: string, template?: string): Promise<string>
  /** the backend pids of connections to a database whose application_name is this */
  backendPids(database: string, applicationName?: string): Promise<number[]>
  /** pg_terminate_backend on each pid: the connection is cut as a server restart or a network failure would */
  terminate(pids: readonly number[]): Promise<void>
  /**
   * A superuser role `role` that must log in over TCP with `password` (scram-sha-256: a pg_hba.conf line put
   * before the template's trust lines, then a reload); its connection URL to `database` with `password`.
   */
  passwordRole(role: string, password: string, database?: string): Promise<(password: string | undefined) => string>
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** PostgreSQL refuses to run as root (CI runs as root): then its commands run as the `postgres` user the package creates. */
const asRoot = process.getuid?.() === 0
const pgUser = asRoot ? 'postgres' : userInfo().username
const pgCommand = (tool: string, args: string[]) =>
  asRoot ? run('runuser', ['-u', 'postgres', '--', join(BIN, tool), ...args]) : run(join(BIN, tool), args)

/**
 * An initdb'd cluster kept in the temp directory and copied for each server: initdb takes about 4 s on a
 * loaded 2-core box, a copy well under 1 s. Made once per machine (and user): a test file that finds none
 * makes one beside it and renames it into place, so files starting together never see half of one.
 */
async function template(): Promise<string> {
  const path = join(tmpdir(), `gatehouse-pg15-template-${pgUser}`)
  if (existsSync(join(path, 'PG_VERSION'))) return path
  const staging = mkdtempSync(join(tmpdir(), 'gatehouse-pg-initdb-'))
  try {
    if (asRoot) chownSync(staging, ...(await postgresIds()))
    await pgCommand('initdb', ['-D', join(staging, 'data'), '-A', 'trust', '-U', pgUser, '--no-sync', '-E', 'UTF8', '--locale=C'])
    try {
      renameSync(join(staging, 'data'), path)
    } catch (err) {
      if (!existsSync(join(path, 'PG_VERSION'))) throw err // another file made it first: use theirs
    }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return path
}

async function postgresIds(): Promise<[number, number]> {
  return [Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout)]
}

/**
 * A throwaway PostgreSQL 15 as the test file's own process: a temp directory (owned by `postgres` when the
 * tests run as root) holding a copy of the initdb'd template (trust authentication, UTF8, C locale), a free port on 127.0.0.1 only, the socket in the
 * temp directory. fsync=off: tests only (a crash of the test machine loses nothing worth keeping), it
 * saves the flushes that make a loaded box slow. One server per test file, a database per suite.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const started = performance.now()
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'))
  if (asRoot) chownSync(dir, ...(await postgresIds()))
  const data = join(dir, 'data')
  const port = await freePort()
  try {
    await run('cp', ['-a', await template(), data])
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`
    await pgCommand('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start'])
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const startMs = performance.now() - started
  const url = (db: string) => `postgres://${pgUser}@127.0.0.1:${port}/${db}`
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url('postgres') })
    await client.connect()
    try {
      return await fn(client)
    } finally {
      await client.end()
    }
  }
  return {
    port,
    startMs,
    async createDatabase(name, template) {
      for (const n of [name, template ?? 'template1'])
        if (!/^[a-z_][a-z0-9_]*$/.test(n)) throw new Error(`test database name '${n}': lowercase letters, digits, _`)
      await admin((c) => c.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`))
      return url(name)
    },
    backendPids: (database, applicationName) =>
      admin(async (c) => {
        const r = await c.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND ($2::text IS NULL OR application_name = $2) ORDER BY pid',
          [database, applicationName ?? null],
        )
        return r.rows.map((row) => row.pid)
      }),
    terminate: (pids) =>
      admin(async (c) => {
        for (const pid of pids) await c.query('SELECT pg_terminate_backend($1)', [pid])
      }),
    async passwordRole(role, password, database = 'postgres') {
      if (!/^[a-z_][a-z0-9_]*$/.test(role)) throw new Error(`test role name '${role}': lowercase letters, digits, _`)
      await admin(async (c) => {
        await c.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD ${c.escapeLiteral(password)}`)
        const hba = join(data, 'pg_hba.conf')
        writeFileSync(hba, `host all ${role} 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`) // the first matching line wins
        await c.query('SELECT pg_reload_conf()')
      })
      const roleUrl = (pw: string | undefined) =>
        `postgres://${role}${pw === undefined ? '' : `:${encodeURIComponent(pw)}`}@127.0.0.1:${port}/${database}`
      // the reload is asynchronous: wait until a login without the password is refused
      await waitFor(
        async () => {
          const c = new pg.Client({ connectionString: roleUrl(`not-${password}`) })
          return c.connect().then(
            () => c.end().then(() => false),
            () => true,
          )
        },
        10_000,
        `pg_hba.conf reloaded: ${role} needs its password`,
        50,
      )
      return roleUrl
    },
    async stop() {
      try {
        await pgCommand('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
