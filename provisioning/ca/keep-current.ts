import type { Logger } from 'pino'
import { cryptoRandom, systemClock, systemTimers, type Clock, type Random, type Timers } from '../../certs/index.ts'
import { installSharedCa } from './ca-sync.ts'
import type { ControlPlane } from '../control-plane.ts'
import { realScheduler, type ChangeFeed, type Scheduler } from '../events.ts'
import type { ServerTlsMaterial } from './keystore.ts'
import { createCaReloader } from './reload.ts'

const REVOCATIONS = new Set(['certificate.revoked', 'claim.revoked'])

export interface CaKeeper {
  /** Stops the hourly refresh and waits for a running CRL refresh and CA reload. */
  close(): Promise<void>
  /** Why the shared registry's newest CA is not installed here (a coded error), or undefined: /readyz's ca check. */
  syncProblem(): Error | undefined
}

/**
 * Keeps a running Gatehouse on the data directory's current CA: reloads it on the change feed's
 * `ca.rotated` (`gatehouse ca rotate` in another process) and on an hourly check, and reissues the
 * CRLs on the same hour. The CRL is reissued on every revocation; the hourly refresh keeps it fresh well
 * before nextUpdate (currentCrls reissues once it is half-way there) for relying parties that fetch it
 * with `gatehouse crl` or over HTTP (GET /crl/<issuer key id>.crl); a revocation event from the change
 * feed reissues them too, so a revocation made in another process reaches the served CRL.
 */
export function keepCaCurrent(deps: {
  control: ControlPlane
  feed: Pick<ChangeFeed, 'onEvent'>
  dataDir: string
  passphrase?: string
  log: Logger
  applyTls(tls: ServerTlsMaterial): void
  scheduler?: Scheduler
  /**
   * On a shared registry (PostgreSQL): each `ca rotate`, on any machine, is installed into this data directory
   * from the database (ca-sync.ts), opened with the CA sync secret and, for keys in a PKCS#11 token, the PIN.
   */
  shared?: { caSyncSecret?: Uint8Array; pkcs11Pin?: string; clock?: Clock; random?: Random; timers?: Timers }
}): CaKeeper {
  const { control, log } = deps
  const caLog = log.child({ module: 'provisioning.ca' })
  const shared = deps.shared
  const reloader = createCaReloader({
    control,
    dataDir: deps.dataDir,
    ...(deps.passphrase !== undefined && { passphrase: deps.passphrase }),
    log: caLog,
    applyTls: deps.applyTls,
    ...(shared && {
      sync: () =>
        installSharedCa(
          deps.dataDir,
          {
            ...(deps.passphrase !== undefined && { passphrase: deps.passphrase }),
            ...(shared.pkcs11Pin !== undefined && { pkcs11Pin: shared.pkcs11Pin }),
            ...(shared.caSyncSecret && { caSyncSecret: shared.caSyncSecret }),
          },
          {
            store: control.store,
            clock: shared.clock ?? systemClock,
            random: shared.random ?? cryptoRandom,
            timers: shared.timers ?? systemTimers,
            log: caLog,
          },
        ),
    }),
  })
  let crlRefresh: Promise<unknown> = Promise.resolve()
  let queued = false
  /** One refresh at a time, and at most one waiting: a burst of revocations (a bulk revoke) costs two. */
  const refreshCrls = () => {
    if (queued) return
    queued = true
    crlRefresh = crlRefresh
      .then(() => {
        queued = false
        return control.authority.currentCrls()
      })
      .catch((err: unknown) => log.error({ err }, 'CRL refresh failed'))
  }
  const unsubscribe = deps.feed.onEvent((event) => {
    reloader.onEvent(event)
    // a revocation committed anywhere (a claim revoked by the CLI, say) is on the served CRLs within a feed poll
    if (REVOCATIONS.has(event.type)) refreshCrls()
  })
  const refresh = () => {
    refreshCrls()
    reloader.check()
  }
  refresh()
  const stop = (deps.scheduler ?? realScheduler).every(3600_000, refresh)
  return {
    async close() {
      stop()
      unsubscribe()
      await crlRefresh
      await reloader.idle()
    },
    syncProblem: () => reloader.syncProblem(),
  }
}
