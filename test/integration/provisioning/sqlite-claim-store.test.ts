import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { claimStoreContract } from '../../contract/claim-store.contract.ts'
import { device } from '../../contract/registry-store.contract.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

claimStoreContract('SqliteClaimStore', async (deviceIds) => {
  const registry = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
  onTestFinished(() => registry.close())
  for (const id of deviceIds) await registry.insertDevice(device(id))
  return registry.claims
})
