import { realpathSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { normalizeSerial, type Clock } from '../../certs/index.ts'
import type { DataDirLayout } from '../data-dir/layout.ts'
import { CaRotationPlanCorrupt } from '../errors.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import { completePendingRotation } from './pending-rotation.ts'
import { listPreviousIssuers, readCert } from './keystore.ts'
import { rotationInProgress } from './rotation.ts'
import { CA_MATERIAL_KEY } from './ca-material.ts'

/**
 * The registry's side of a CA rotation, which has no window between the files and the audit log:
 *  1. under the rotation lock, before the files are committed (ca/next), the planned rotation (its audit
 *     details) is written to the meta row `ca.rotation.pending`;
 *  2. after the files are in place, still under the lock, one transaction writes the audit entry
 *     `ca.rotated`, the event `ca.rotated` and clears the row.
 * A process killed between 1 and 2 leaves the row; the next open of the registry (`gatehouse start`, every
 * CLI command that opens it, `ca rotate`, a running server's CA check) finds it with no live rotation
 * holding the lock, and decides from the files: the planned issuing CA is in use (or already kept as a
 * previous one) -> the rotation happened, so its audit entry (details.recovered) and event are written
 * now; otherwise it died before its commit and changed nothing -> the row is cleared. Why a row, not a
 * file beside the CA: the decision is then one transaction, serialised with every other registry writer.
 */
export const PENDING_ROTATION_KEY = 'ca.rotation.pending'

export interface PlannedRotation {
  /** the new issuing CA's serial */
  serial: string
  previousSerial: string
  notAfter: string
  serverSerial: string
  actor: string
  /** ISO time the rotation was planned */
  at: string
  /** the machine and data directory that planned it (originOf): on a shared registry only they can settle it */
  origin?: string
  /** on a shared registry: the CA material for the other nodes (ca-material.ts), stored with the event */
  material?: string
}

/** Which machine and data directory a plan comes from: `<hostname>:<data directory's real path>`. */
export function originOf(layout: DataDirLayout): string {
  return `${hostname()}:${realpathSync(layout.root)}`
}

/** Step 1: the rotation's plan, written before its commit point. */
export async function planRotation(store: RegistryStore, planned: PlannedRotation): Promise<void> {
  await store.setMeta(PENDING_ROTATION_KEY, JSON.stringify(planned))
}

const PLAN_FIELDS = ['serial', 'previousSerial', 'notAfter', 'serverSerial', 'actor', 'at'] as const

/**
 * The row's plan; a row that is not one (a torn write, a hand edit) is a coded error that changes nothing:
 * the row stays as evidence of a rotation whose outcome this process cannot decide.
 */
function parsePlan(raw: string): PlannedRotation {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch (err) {
    throw new CaRotationPlanCorrupt(`not JSON: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CaRotationPlanCorrupt('not a JSON object')
  const missing = PLAN_FIELDS.filter((f) => typeof (value as Record<string, unknown>)[f] !== 'string')
  if (missing.length > 0) throw new CaRotationPlanCorrupt(`no string ${missing.join(', ')}`)
  return value as PlannedRotation
}

/** Step 2 (and recovery): the audit entry and event of a rotation whose files are in place, and the row cleared. */
async function settle(store: RegistryStore, raw: string, happened: boolean, clock: Clock, recovered: boolean): Promise<boolean> {
  const planned = parsePlan(raw)
  return store.transaction(async () => {
    if ((await store.getMeta(PENDING_ROTATION_KEY)) !== raw) return false // another process settled it first
    if (happened) {
      const { serial, previousSerial, notAfter, serverSerial, actor, at } = planned
      await store.appendAudit({
        at: new Date(at),
        actor,
        action: 'ca.rotated',
        subject: 'ca',
        details: { serial, previousSerial, notAfter, serverSerial, ...(recovered && { recovered: true }) },
      })
      // the other nodes install the new CA from this row on the event (ca-sync.ts)
      if (planned.material) await store.setMeta(CA_MATERIAL_KEY, planned.material)
      await store.appendEvent('ca.rotated', { serial }, clock.now())
    }
    await store.setMeta(PENDING_ROTATION_KEY, '')
    return true
  })
}

/** Step 2, by the rotation itself once its files are in place (under its lock). */
export async function recordRotation(store: RegistryStore, clock: Clock): Promise<void> {
  const raw = await store.getMeta(PENDING_ROTATION_KEY)
  if (raw) await settle(store, raw, true, clock, false)
}

/**
 * Recovery on open: a rotation planned by a process that is gone is recorded (its files are in place)
 * or dropped (they are not). Leaves a rotation alone while a live process holds the rotation lock.
 */
export async function recordInterruptedRotation(
  store: RegistryStore,
  layout: DataDirLayout,
  deps: { clock: Clock; log: Logger },
): Promise<void> {
  const raw = await store.getMeta(PENDING_ROTATION_KEY)
  if (!raw || rotationInProgress(layout)) return
  const { serial, origin } = parsePlan(raw) // before anything is moved: a corrupt plan changes nothing
  // another machine's rotation (shared registry): its files are not here, and only its own lock says whether it runs
  if (origin !== undefined && origin !== originOf(layout)) return
  completePendingRotation(layout)
  const happened =
    normalizeSerial(readCert(layout.issuingCert).serialNumber) === serial || listPreviousIssuers(layout).some((p) => p.serial === serial)
  if (!(await settle(store, raw, happened, deps.clock, true))) return
  if (happened) deps.log.warn({ serial }, 'a CA rotation interrupted after its commit: its audit entry and ca.rotated event written now')
  else deps.log.warn({ serial }, 'a CA rotation interrupted before its commit: nothing changed, its plan dropped')
}
