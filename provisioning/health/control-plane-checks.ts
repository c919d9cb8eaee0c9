import { assertIssuerUsable, type Clock, type OperatingCa } from '../../certs/index.ts'
import { ChangeFeedStalled } from '../errors.ts'
import type { ChangeFeed } from '../events.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import type { HealthCheck } from './health.ts'

/** How long the write probe waits for another process's write lock before the registry counts as unwritable. */
export const DATABASE_PROBE_BUSY_MS = 250

/** The registry takes a real write within a short lock wait (GH_STORE_WRITE_FAILED otherwise). */
export function databaseCheck(store: Pick<RegistryStore, 'probeWrite'>, clock: Clock, busyTimeoutMs = DATABASE_PROBE_BUSY_MS): HealthCheck {
  return async () => store.probeWrite(clock.now(), busyTimeoutMs)
}

/** The issuing CA is loaded, valid now, and its key signs for its certificate (read now if it was not yet). */
export function caCheck(
  authority: { signingCa(): Promise<Pick<OperatingCa, 'issuing'>> },
  clock: Clock,
  syncProblem: () => Error | undefined = () => undefined,
): HealthCheck {
  return async () => {
    // a shared registry's newest CA that this node could not install (GH_CA_SYNC_*): it serves the CA it has
    const problem = syncProblem()
    if (problem) throw problem
    await assertIssuerUsable((await authority.signingCa()).issuing, clock.now())
  }
}

/**
 * The change feed runs and a poll succeeded within the last few intervals (at least 2 s; counted from its
 * start before the first poll): a feed that stopped, or whose polls keep failing, would leave revocations
 * and settings changes undelivered.
 */
export function changeFeedCheck(feed: Pick<ChangeFeed, 'status'>, clock: Clock, intervals = 5): HealthCheck {
  return async () => {
    const { running, intervalMs, lastProgressAt } = feed.status()
    if (!running || lastProgressAt === null) throw new ChangeFeedStalled('is stopped')
    const boundMs = Math.max(intervals * intervalMs, 2000)
    const ageMs = clock.now().getTime() - lastProgressAt.getTime()
    if (ageMs > boundMs) throw new ChangeFeedStalled(`has not polled for ${ageMs} ms (bound ${boundMs} ms)`)
  }
}
