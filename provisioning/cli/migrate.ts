import { type Command, Option } from 'commander'
import { MigrateTargetInvalid } from '../errors.ts'
import { addCommonOptions, addJsonOption, printJson, type CliDeps, type CommonOptions } from './cli-deps.ts'

const HELP = `
Copies the registry of a stopped single node (its data directory's SQLite file, opened read-only and left
as it was) into an empty PostgreSQL database, every table in one transaction: all of it arrives, or
nothing. The CA files stay in the data directory; no device is re-provisioned.
The database: --to postgres takes its URL from GATEHOUSE_DATABASE_URL (postgres://user:password@host:5432/db);
--to postgres://user@host:5432/db names it in the flag, without a password (refused there: ps shows flags),
which then comes from ~/.pgpass, PGPASSFILE or PGPASSWORD.
Example: GATEHOUSE_DATABASE_URL=postgres://gatehouse:secret@db:5432/gatehouse gatehouse migrate --from sqlite --to postgres`

interface MigrateOptions extends CommonOptions {
  from: string
  to: string
}

/**
 * The database URL `--to` names: 'postgres' (the URL in GATEHOUSE_DATABASE_URL) or a postgres:// URL
 * without a password. The messages never repeat the URL (it may hold a password).
 */
export function migrateTargetUrl(to: string, envUrl: string | undefined): string {
  if (to === 'postgres') {
    if (!envUrl)
      throw new MigrateTargetInvalid(
        '--to postgres takes the database URL from GATEHOUSE_DATABASE_URL, which is not set: set it to postgres://user:password@host:5432/database',
      )
    if (!isPostgresUrl(envUrl))
      throw new MigrateTargetInvalid('GATEHOUSE_DATABASE_URL is not a postgres:// URL (postgres://user:password@host:5432/database)')
    return envUrl
  }
  if (!isPostgresUrl(to))
    throw new MigrateTargetInvalid('--to takes postgres (the URL in GATEHOUSE_DATABASE_URL) or a URL postgres://user@host:5432/database')
  if (new URL(to).password !== '')
    throw new MigrateTargetInvalid(
      'the --to URL holds a password, which anyone on this machine can read in ps: give --to postgres and the URL in GATEHOUSE_DATABASE_URL, or the URL without the password and the password in ~/.pgpass (PGPASSFILE)',
    )
  return to
}

function isPostgresUrl(s: string): boolean {
  try {
    const u = new URL(s)
    return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.host !== ''
  } catch {
    return false
  }
}

/** `gatehouse migrate --from sqlite --to postgres`: a single node's registry into PostgreSQL (cluster mode). */
export function registerMigrate(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('migrate')
    .description("copy a stopped node's registry from SQLite into an empty PostgreSQL database (cluster mode)")
    .addOption(
      new Option('--from <engine>', "where the registry is now: the data directory's SQLite file")
        .choices(['sqlite'])
        .makeOptionMandatory(),
    )
    .requiredOption('--to <target>', 'postgres (URL in GATEHOUSE_DATABASE_URL) or postgres://user@host:port/db (no password)')
    .addHelpText('after', HELP)
  addJsonOption(addCommonOptions(cmd)).action(async (options: MigrateOptions) => {
    const source = await deps.migrateSource(options)
    const url = migrateTargetUrl(options.to, source.databaseUrl)
    // loaded only here: no other command pays for pg
    const { copySqliteToPostgres } = await import('../store/postgres/sqlite-to-postgres.ts')
    const summary = await copySqliteToPostgres(source.registry, url, {
      onTable: (t) => deps.io.err(`migrate: ${t.table}: ${t.rows} rows copied\n`),
    })
    if (options.json) return printJson(deps.io, summary)
    deps.io.out(
      `migrated ${summary.rows} rows in ${summary.tables.length} tables from ${summary.from} to ${summary.to} (schema version ${summary.schemaVersion}), in one transaction; the SQLite file is unchanged\n`,
    )
  })
}
