import { afterAll, beforeAll, describe, onTestFinished } from 'vitest'
import type { DeviceRecord } from '../../../provisioning/store/registry-store.ts'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { aiUsageStoreContract } from '../../contract/ai-usage-store.contract.ts'
import { apiKeyStoreContract } from '../../contract/api-key-store.contract.ts'
import { appStoreContract } from '../../contract/app-store.contract.ts'
import { claimStoreContract } from '../../contract/claim-store.contract.ts'
import { dashboardSessionStoreContract } from '../../contract/dashboard-session-store.contract.ts'
import { limitsStoreContract } from '../../contract/limits-store.contract.ts'
import { device } from '../../contract/registry-store.contract.ts'
import { routeStoreContract } from '../../contract/route-store.contract.ts'
import { settingsStoreContract } from '../../contract/settings-store.contract.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'

// The registry's sibling stores' contract suites (test/contract/) on PostgreSQL, as the SQLite stores run them
// (integration/provisioning/sqlite-store-contracts.test.ts, sqlite-claim-store.test.ts): one server for the
// file, one database per suite (a copy of one migrated database), emptied before each test.
const available = postgresAvailable()

describe.skipIf(!available)('the store contracts on PostgreSQL', () => {
  let server: PostgresServer
  const registries = new Map<string, Promise<PgRegistryStore>>()
  const urls = new Map<string, Promise<string>>()

  beforeAll(async () => {
    server = await startPostgres()
    const migrated = await PgRegistryStore.open(await server.createDatabase('migrated'))
    await migrated.close()
  })
  afterAll(async () => {
    for (const r of registries.values()) await (await r).close()
    await server?.stop()
  })

  /** the suite's registry (its database made on first use), with every table emptied and the devices given inserted */
  const fresh = async (suite: string, devices: readonly DeviceRecord[] = []): Promise<PgRegistryStore> => {
    let opening = registries.get(suite)
    if (!opening) {
      const url = server.createDatabase(suite, 'migrated')
      urls.set(suite, url)
      opening = url.then((u) => PgRegistryStore.open(u))
      registries.set(suite, opening)
    }
    const store = await opening
    const tables = (
      await store.db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'")
    ).map((r) => String(r.tablename))
    // DELETE with foreign keys off for the statement (replica role): on tables of a few rows far quicker than TRUNCATE's new files
    await store.db.query(`BEGIN; SET LOCAL session_replication_role = replica; ${tables.map((t) => `DELETE FROM ${t};`).join(' ')} COMMIT`)
    for (const d of devices) await store.insertDevice(d)
    return store
  }

  claimStoreContract(
    'PgClaimStore',
    async (ids) =>
      (
        await fresh(
          'claims',
          ids.map((id) => device(id)),
        )
      ).claims,
  )
  appStoreContract('PgAppStore', async () => (await fresh('apps')).apps)
  routeStoreContract('PgRouteStore', async () => (await fresh('routes')).routes)
  apiKeyStoreContract('PgApiKeyStore', async () => (await fresh('api_keys')).apiKeys)
  dashboardSessionStoreContract('PgDashboardSessionStore', async () => (await fresh('dashboard_sessions')).dashboardSessions)
  limitsStoreContract(
    'PgLimitsStore',
    async (ids) =>
      (
        await fresh(
          'limits',
          ids.map((id) => device(id)),
        )
      ).limits,
  )
  settingsStoreContract('PgSettingsStore', async (devices) => (await fresh('settings', devices)).settings)
  aiUsageStoreContract(
    'PgAiUsageStore',
    async () => (await fresh('ai_usage')).aiUsage,
    // three "nodes": a PgDatabase pool each on the suite's one database
    async (count) => {
      await fresh('ai_usage')
      const url = (await urls.get('ai_usage')) as string
      const nodes = await Promise.all(Array.from({ length: count }, (_, i) => PgRegistryStore.open(url, { applicationName: `node-${i}` })))
      onTestFinished(async () => {
        for (const n of nodes) await n.close()
      })
      return nodes.map((n) => n.aiUsage)
    },
  )
})
