import type { Logger } from 'pino'
import type { ControlPlane } from '../control-plane.ts'
import { loadServerTls, readCert, type ServerTlsMaterial } from './keystore.ts'
import { dataDirLayout } from '../data-dir/layout.ts'
import { completePendingRotation } from './pending-rotation.ts'
import { recordInterruptedRotation } from './rotation-journal.ts'
import { systemClock } from '../../certs/index.ts'
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
}): CaReloader {
  const { control, dataDir, log } = deps
  const layout = dataDirLayout(dataDir)
  let running: Promise<void> = Promise.resolve()
  let queued = false

  async function reload(reason: string): Promise<void> {
    const from = control.authority.ca.issuing.certificate.serialNumber
    // a rotation found by the hourly check may be one whose `ca rotate` was killed before its audit entry
    await recordInterruptedRotation(control.store, layout, { clock: systemClock, log })
    await control.reloadCa()
    deps.applyTls(await loadServerTls(dataDir, deps.passphrase))
    log.info({ serial: control.authority.ca.issuing.certificate.serialNumber, previousSerial: from, reason }, 'issuing CA reloaded')
  }

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
      try {
        completePendingRotation(layout)
        const onDisk = readCert(layout.issuingCert).serialNumber
        if (onDisk !== control.authority.ca.issuing.certificate.serialNumber) schedule('check')
      } catch (err) {
        log.error({ err }, 'CA check failed')
      }
    },
    idle: () => running,
  }
}
