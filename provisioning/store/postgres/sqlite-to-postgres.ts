import { existsSync } from 'node:fs'
import Database from 'better-sqlite3'
import { DataDirUnusable, MigrateSourceInvalid, MigrateTargetNotEmpty } from '../../errors.ts'
import { SCHEMA_VERSION } from '../migrations/index.ts'
import { PgDatabase } from './pg-database.ts'
import { describeUrl } from './pg-failure.ts'

/**
 * Every table of the registry, in an order its foreign keys accept (a parent before its children). A
 * migration that adds a table adds it here: a source holding a table this list lacks is refused
 * (GH_MIGRATE_SOURCE_INVALID), and test/integration/cli/migrate.test.ts compares the list with the tables
 * SQLite's migrations make.
 */
export const REGISTRY_TABLES: readonly string[] = [
  'devices',
  'device_labels',
  'certificates',
  'audit_log',
  'events',
  'meta',
  'settings_layers',
  'device_settings',
  'settings_schemas',
  'api_keys',
  'ai_usage',
  'insights',
  'claims',
  'claim_tokens',
  'claim_devices',
  'tier_limits',
  'device_limits',
  'telemetry_routes',
  'apps',
  'app_certificates',
  'dashboard_sessions',
]

/** SQLite's own tables: sqlite_sequence's counters become the identity sequences' positions. */
const SQLITE_INTERNAL = /^sqlite_/

export interface TableCopied {
  table: string
  rows: number
}

export interface SqliteToPostgresSummary {
  from: string
  /** host:port/database, without user or password */
  to: string
  schemaVersion: number
  tables: TableCopied[]
  rows: number
}

export interface CopyOptions {
  /** told after each table is copied (inside the transaction, before the commit); awaited */
  onTable?: (copied: TableCopied) => void | Promise<void>
  /** rows per INSERT (default: as many as fit in 30000 parameters, at most 500) */
  batchRows?: number
}

type SqlValue = string | bigint | number | null

/**
 * Copies a SQLite registry into an empty PostgreSQL database, row for row, in ONE PostgreSQL transaction:
 * either every table arrives or nothing does. The SQLite file is opened read-only and read in one read
 * transaction (a consistent snapshot). The target's schema is made by PgDatabase's migrations (the same
 * numbers as SQLite's); the source must be at this code's schema version. Values are converted by the
 * target column's type: SQLite's ISO-8601 text to timestamptz, 0/1 to boolean, integers (read as BigInt,
 * so none loses precision) to bigint; text (JSON documents, sealed secrets, key hashes) is copied byte for
 * byte. Row ids are kept (the change feed's positions stay valid) and each identity sequence is set past
 * the highest id SQLite ever handed out (sqlite_sequence: AUTOINCREMENT never reuses an id).
 */
export async function copySqliteToPostgres(sqlitePath: string, url: string, options: CopyOptions = {}): Promise<SqliteToPostgresSummary> {
  if (!existsSync(sqlitePath))
    throw new DataDirUnusable(sqlitePath, 'there is no registry to migrate (gatehouse init makes one; check --data-dir)')
  const sqlite = new Database(sqlitePath, { readonly: true, fileMustExist: true })
  try {
    const version = Number(sqlite.pragma('user_version', { simple: true }))
    if (version !== SCHEMA_VERSION)
      throw new MigrateSourceInvalid(
        sqlitePath,
        version < SCHEMA_VERSION
          ? `its schema version is ${version}, this Gatehouse's is ${SCHEMA_VERSION}: run this Gatehouse once on the data directory (gatehouse start, then stop it), which migrates SQLite, then migrate`
          : `its schema version is ${version}, newer than this Gatehouse's ${SCHEMA_VERSION}: migrate with the Gatehouse that wrote it`,
      )
    const tables = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[])
      .map((r) => r.name)
      .filter((n) => !SQLITE_INTERNAL.test(n))
    const unknown = tables.filter((t) => !REGISTRY_TABLES.includes(t))
    if (unknown.length > 0)
      throw new MigrateSourceInvalid(sqlitePath, `it holds tables this Gatehouse does not know how to copy (${unknown.join(', ')})`)
    const db = await PgDatabase.open(url, { applicationName: 'gatehouse-migrate', poolSize: 1, statementTimeoutMs: 0 })
    try {
      const targetVersion = await db.schemaVersion()
      if (targetVersion !== SCHEMA_VERSION)
        throw new Error(`the PostgreSQL schema is at version ${targetVersion}, SQLite's at ${SCHEMA_VERSION}: their migrations differ`)
      sqlite.exec('BEGIN') // one snapshot for every table
      try {
        const copied = await db.transaction(() => copyTables(sqlite, db, describeUrl(url), tables, options))
        return {
          from: sqlitePath,
          to: describeUrl(url),
          schemaVersion: version,
          tables: copied,
          rows: copied.reduce((n, t) => n + t.rows, 0),
        }
      } finally {
        sqlite.exec('ROLLBACK')
      }
    } finally {
      await db.close()
    }
  } finally {
    sqlite.close()
  }
}

async function copyTables(
  sqlite: Database.Database,
  db: PgDatabase,
  where: string,
  present: string[],
  options: CopyOptions,
): Promise<TableCopied[]> {
  for (const table of REGISTRY_TABLES) {
    const [row] = await db.query(`SELECT count(*) AS n FROM ${table}`)
    const n = Number(row?.n ?? 0)
    if (n > 0) throw new MigrateTargetNotEmpty(where, n, table)
  }
  const copied: TableCopied[] = []
  for (const table of REGISTRY_TABLES.filter((t) => present.includes(t))) {
    const rows = await copyTable(sqlite, db, table, options.batchRows)
    const done = { table, rows }
    copied.push(done)
    await options.onTable?.(done)
  }
  await setIdentities(sqlite, db)
  return copied
}

/** the target's columns of a table and their types (information_schema's data_type) */
async function targetColumns(db: PgDatabase, table: string): Promise<Map<string, string>> {
  const rows = await db.query(
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
    [table],
  )
  return new Map(rows.map((r) => [String(r.column_name), String(r.data_type)]))
}

function convert(value: SqlValue, type: string): unknown {
  if (value === null) return null
  if (type === 'boolean') return Number(value) !== 0
  if (typeof value === 'bigint') return value.toString()
  return value
}

async function copyTable(sqlite: Database.Database, db: PgDatabase, table: string, batchRows?: number): Promise<number> {
  const columns = (sqlite.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name)
  const types = await targetColumns(db, table)
  const missing = columns.filter((c) => !types.has(c))
  const extra = [...types.keys()].filter((c) => !columns.includes(c))
  if (missing.length > 0 || extra.length > 0)
    throw new Error(`table ${table}: the columns differ between SQLite and PostgreSQL (missing ${missing}; extra ${extra})`)
  const quoted = columns.map((c) => `"${c}"`).join(', ')
  const per = batchRows ?? Math.max(1, Math.min(500, Math.floor(30000 / columns.length)))
  const read = sqlite.prepare(`SELECT ${quoted} FROM "${table}" ORDER BY rowid`).safeIntegers(true).raw(true)
  let batch: SqlValue[][] = []
  let count = 0
  const flush = async () => {
    if (batch.length === 0) return
    const params: unknown[] = []
    const tuples = batch.map((row) => {
      const marks = row.map((value, i) => {
        params.push(convert(value, types.get(columns[i] as string) as string))
        return `$${params.length}`
      })
      return `(${marks.join(', ')})`
    })
    await db.execute(`INSERT INTO ${table} (${quoted}) OVERRIDING SYSTEM VALUE VALUES ${tuples.join(', ')}`, params)
    count += batch.length
    batch = []
  }
  for (const row of read.iterate() as IterableIterator<SqlValue[]>) {
    batch.push(row)
    if (batch.length >= per) await flush()
  }
  await flush()
  return count
}

/** Each identity column's sequence past the highest id SQLite handed out (its AUTOINCREMENT counter, or the highest row). */
async function setIdentities(sqlite: Database.Database, db: PgDatabase): Promise<void> {
  const identities = await db.query(
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES'",
  )
  const hasSequence = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").get() !== undefined
  for (const { table_name: table, column_name: column } of identities as { table_name: string; column_name: string }[]) {
    if (!REGISTRY_TABLES.includes(table)) continue
    const counter = hasSequence
      ? ((sqlite.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').safeIntegers(true).pluck().get(table) as bigint | undefined) ??
        0n)
      : 0n
    const highest = (sqlite.prepare(`SELECT max("${column}") FROM "${table}"`).safeIntegers(true).pluck().get() as bigint | null) ?? 0n
    const last = counter > highest ? counter : highest
    if (last > 0n) await db.query(`SELECT setval(pg_get_serial_sequence($1, $2), $3, true)`, [table, column, last.toString()])
  }
}
