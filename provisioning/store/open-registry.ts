import type { AiUsageStore } from './ai-usage-store.ts'
import type { ApiKeyStore } from './api-key-store.ts'
import type { AppStore } from './app-store.ts'
import type { ClaimStore } from './claim-store.ts'
import type { DashboardSessionStore } from './dashboard-session-store.ts'
import type { LimitsStore } from './limits-store.ts'
import type { RegistryStore } from './registry-store.ts'
import type { RouteStore } from './route-store.ts'
import type { SettingsStore } from './settings-store.ts'
import { hostname } from 'node:os'
import { SqliteRegistryStore } from './sqlite-registry-store.ts'

/** The registry with the sibling stores that share its database (one transaction spans them all). */
export interface Registry extends RegistryStore {
  readonly settings: SettingsStore
  readonly apiKeys: ApiKeyStore
  readonly claims: ClaimStore
  readonly limits: LimitsStore
  readonly routes: RouteStore
  readonly apps: AppStore
  readonly aiUsage: AiUsageStore
  readonly dashboardSessions: DashboardSessionStore
  /** SQLite closes at once; PostgreSQL ends its pool and LISTEN connection */
  close(): void | Promise<void>
}

/** How a process uses a PostgreSQL registry (ignored on SQLite). */
export interface RegistryPoolOptions {
  /** the pool's connections (`databasePoolSize`, divided among `--workers`: gatehouse.ts); default 10 */
  poolSize?: number
  /** statement_timeout (`databaseStatementTimeoutMs`); default STATEMENT_TIMEOUT_MS of pg-database.ts */
  statementTimeoutMs?: number
}

/**
 * The application_name of this process's connections, `gatehouse/<host>:<pid>` (LISTEN's ends in `-listen`):
 * an operator tells the nodes (and the workers of one, and a CLI call) apart in pg_stat_activity. The host is
 * cut so the whole name fits PostgreSQL's 63 bytes with its suffix.
 */
function applicationName(host = hostname(), pid = process.pid): string {
  return `gatehouse/${host.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}:${pid}`
}

/**
 * The one way the control plane opens its registry: on PostgreSQL when a database URL is configured
 * (`databaseUrl`, GATEHOUSE_DATABASE_URL: connected, and its schema migrated), else the SQLite file of the
 * data directory. The PostgreSQL client loads only then: a SQLite CLI call never pays for it.
 */
export async function openRegistry(sqlitePath: string, databaseUrl: string | undefined, pool: RegistryPoolOptions = {}): Promise<Registry> {
  if (databaseUrl === undefined) return new SqliteRegistryStore(sqlitePath)
  const { PgRegistryStore } = await import('./postgres/pg-registry-store.ts')
  return PgRegistryStore.open(databaseUrl, { applicationName: applicationName(), ...pool })
}
