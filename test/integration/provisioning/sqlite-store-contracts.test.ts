import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { DeviceRecord } from '../../../provisioning/store/registry-store.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { apiKeyStoreContract } from '../../contract/api-key-store.contract.ts'
import { appStoreContract } from '../../contract/app-store.contract.ts'
import { dashboardSessionStoreContract } from '../../contract/dashboard-session-store.contract.ts'
import { limitsStoreContract } from '../../contract/limits-store.contract.ts'
import { routeStoreContract } from '../../contract/route-store.contract.ts'
import { settingsStoreContract } from '../../contract/settings-store.contract.ts'
import { device } from '../../contract/registry-store.contract.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

// The registry's sibling stores on SQLite (a fresh file per test); integration/postgres/pg-store-contracts.test.ts
// runs the same suites on PostgreSQL, unit/provisioning/in-memory-claim-store.test.ts the claim one on the fake.
async function registry(devices: readonly DeviceRecord[] = []): Promise<SqliteRegistryStore> {
  const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
  onTestFinished(() => store.close())
  for (const d of devices) await store.insertDevice(d)
  return store
}

appStoreContract('SqliteAppStore', async () => (await registry()).apps)
routeStoreContract('SqliteRouteStore', async () => (await registry()).routes)
apiKeyStoreContract('SqliteApiKeyStore', async () => (await registry()).apiKeys)
limitsStoreContract('SqliteLimitsStore', async (ids) => (await registry(ids.map((id) => device(id)))).limits)
settingsStoreContract('SqliteSettingsStore', async (devices) => (await registry(devices)).settings)
dashboardSessionStoreContract('SqliteDashboardSessionStore', async () => (await registry()).dashboardSessions)
