import type { Logger } from 'pino'
import type { ControlPlane } from '../control-plane.ts'
import { loadServerTls, readCert, type ServerTlsMaterial } from './keystore.ts'
import { dataDirLayout } from '../data-dir/layout.ts'
import { completePendingRotation } from './pending-rotation.ts'
import { recordInterruptedRotation } from './rotation-journal.ts'
import { normalizeSerial, systemClock } from '../../certs/index.ts'
import type { ControlEvent } from '../events.ts'

export interface CaReloader {
  /** Feed it the change feed's events: a `ca.rotated` reloads the CA. */
  onEvent(event: ControlEvent): void
  /**
   * Reloads when ca/issuing.crt is not the issuing CA in use: a rotation whose event was never written
   * (a crash between the files and the registry) or a reload that failed. Call it now and then (hourly).
   */
  check(): void
  /** Resolves when no reload is running (for shutdown). */
  idle(): Promise<void>
  /** The coded error of the last failed installation of a shared registry's CA (ca-sync.ts), until one succeeds. */
  syncProblem(): Error | undefined
}

/**
 * Keeps a running Gatehouse on the data directory's current CA after `gatehouse ca rotate` (run by
 * another process): the control plane's authority and CRLs (control.reloadCa()), then the TLS
 * material (applyTls: the broker's and the HTTPS API's setSecureContext, which leave live connections
 * up). One reload at a time; a failure is logged at error and retried on the next event or check().
 */
export function createCaReloader(deps: {
  control: ControlPlane
  dataDir: string
  passphrase?: string
  log: Logger
  applyTls(tls: ServerTlsMaterial): void
  /**
   * On a shared registry: installs the CA the newest rotation left in the database into this data directory
   * (installSharedCa), before every reload and check; resolves whether it installed one.
   */
  sync?: () => Promise<boolean>
}): CaReloader {
  const { control, dataDir, log } = deps
  const layout = dataDirLayout(dataDir)
  let running: Promise<void> = Promise.resolve()
  let queued = false
  let syncProblem: Error | undefined

  /** A failed installation keeps this node on the CA it has (nothing was written) and shows in /readyz. */
  async function sync(): Promise<void> {
    if (!deps.sync) return
    try {
      await deps.sync()
      syncProblem = undefined
    } catch (err) {
      syncProblem = err as Error
      throw err
    }
  }

  async function reload(reason: string): Promise<void> {
    await sync()
    const from = serialInUse()
    if (reason === 'check' && serialOnDisk() === from) return
    // a rotation found by the hourly check may be one whose `ca rotate` was killed before its audit entry
    await recordInterruptedRotation(control.store, layout, { clock: systemClock, log })
    await control.reloadCa()
    deps.applyTls(await loadServerTls(dataDir, deps.passphrase))
    log.info({ serial: serialInUse(), previousSerial: from, reason }, 'issuing CA reloaded')
  }

  // canonical (normalizeSerial), as every other log line, the audit and the events name a serial
  const serialInUse = () => normalizeSerial(control.authority.ca.issuing.certificate.serialNumber)
  const serialOnDisk = () => normalizeSerial(readCert(layout.issuingCert).serialNumber)

  function schedule(reason: string): void {
    if (queued) return // one more reload is already waiting: it will read the newest CA
    queued = true
    running = running.then(() => {
      queued = false
      return reload(reason).catch((err: unknown) =>
        log.error({ err, reason }, 'CA reload failed; retrying on the next ca.rotated event or hourly check'),
      )
    })
  }

  return {
    onEvent(event) {
      if (event.type === 'ca.rotated') schedule('ca.rotated')
    },
    check() {
      if (deps.sync) return schedule('check') // the database may hold a CA this directory lacks: read it
      try {
        completePendingRotation(layout)
        if (serialOnDisk() !== serialInUse()) schedule('check')
      } catch (err) {
        log.error({ err }, 'CA check failed')
      }
    },
    idle: () => running,
    syncProblem: () => syncProblem,
  }
}
