import { existsSync } from 'node:fs'
import { systemClock, type Clock } from '../../certs/index.ts'
import { dataDirLayout } from '../data-dir/layout.ts'
import { CaNotInitialized } from '../errors.ts'
import { openRegistry } from '../store/open-registry.ts'
import type { CheckReport } from './finding.ts'
import { readFleetSnapshot, type SnapshotStores } from './read-fleet-snapshot.ts'
import { DEFAULT_CHECK_OPTIONS, runChecks, type CheckOptions } from './run-checks.ts'

/** The fleet checks over a data directory, through stores already open (a running Gatehouse's). */
export async function checkFleet(
  dataDir: string,
  stores: SnapshotStores,
  options: Partial<CheckOptions>,
  deps: { clock: Clock },
): Promise<CheckReport> {
  const o = { ...DEFAULT_CHECK_OPTIONS, ...options }
  return runChecks(await readFleetSnapshot(dataDir, stores, deps, o), o)
}

/** The fleet checks offline (`gatehouse check`): opens the registry, reads, closes; needs no CA passphrase. */
export async function checkDataDir(
  dataDir: string,
  options: Partial<CheckOptions>,
  deps: { clock?: Clock; databaseUrl?: string } = {},
): Promise<CheckReport> {
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir)
  const store = await openRegistry(layout.database, deps.databaseUrl)
  try {
    return await checkFleet(dataDir, { registry: store, claims: store.claims, apiKeys: store.apiKeys, settings: store.settings }, options, {
      clock: deps.clock ?? systemClock,
    })
  } finally {
    await store.close()
  }
}
