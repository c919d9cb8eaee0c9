import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { deviceDirectoryContract } from '../../contract/device-directory.contract.ts'
import { certificate, device, registryStoreContract } from '../../contract/registry-store.contract.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { registryDirectoryFixture } from '../../helpers/registry-directory-fixture.ts'

// The RegistryStore contract (test/contract/registry-store.contract.ts) on PostgreSQL, as SQLite and the
// in-memory store run it, and what only this engine's store shows; and the DeviceDirectory contract on it, as
// the registry directory runs it on SQLite (integration/provisioning/registry-directory.test.ts). The sibling stores (claims, apps, routes,
// API keys, limits, settings, AI usage) run their contract suites in pg-store-contracts.test.ts.
const t0 = new Date('2026-01-01T00:00:00.000Z')
const available = postgresAvailable()

describe.skipIf(!available)('PgRegistryStore', () => {
  let server: PostgresServer
  let store: PgRegistryStore

  beforeAll(async () => {
    server = await startPostgres()
    store = await PgRegistryStore.open(await server.createDatabase('registry'))
  })
  afterAll(async () => {
    await store?.close()
    await server?.stop()
  })

  /** the one store, every table emptied and every identity restarted (so the contract sees a new registry) */
  async function emptied(): Promise<PgRegistryStore> {
    const tables = (await store.db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'"))
      .map((r) => String(r.tablename))
      .join(', ')
    await store.db.query(`TRUNCATE ${tables} RESTART IDENTITY CASCADE`)
    return store
  }

  registryStoreContract('PgRegistryStore', emptied)
  deviceDirectoryContract('the registry directory on PostgreSQL', async () => registryDirectoryFixture(await emptied()))

  it('rolls back every write of a transaction that throws, in any store of the database', async () => {
    await emptied()
    await store.insertDevice(device('keep'))
    await expect(
      store.transaction(async () => {
        await store.insertDevice(device('gone'))
        await store.insertCertificate(certificate('01', 'gone'))
        await store.limits.putTier({ key: 'gold', limits: { publishRate: 1 }, updatedAt: t0, updatedBy: 'op' })
        await store.insertDevice(device('keep'))
      }),
    ).rejects.toMatchObject({ code: 'GH_DEVICE_EXISTS' })
    expect(await store.getDevice('gone')).toBeUndefined()
    expect(await store.getCertificate('01')).toBeUndefined()
    expect(await store.limits.getTier('gold')).toBeUndefined()
  })
})
