import type { Logger } from 'pino'
import { assertDeviceId, type Clock, type CrlReason } from '../../certs/index.ts'
import { BulkInvalid, BulkOverMax, DeviceFieldInvalid, DeviceRevoked } from '../errors.ts'
import type { ControlEvent } from '../events.ts'
import { GROUP_PATTERN } from '../settings/settings-service.ts'
import type { DeviceRecord, DeviceStatus, Labels, RegistryStore } from '../store/registry-store.ts'
import { assertLabels, patchLabels } from './labels.ts'

/** A change to a device: each field given is set; a label set to null is removed (JSON merge patch). */
export interface DeviceUpdate {
  group?: string | null
  tier?: string
  labels?: Record<string, string | null>
}

/** Which devices a bulk action takes: every criterion given must hold (at least one is required). */
export interface DeviceSelector {
  group?: string
  labels?: Labels
  status?: DeviceStatus
  tier?: string
}

export type BulkAction =
  | { kind: 'disable' }
  | { kind: 'enable' }
  | { kind: 'revoke'; reason: CrlReason }
  /** to this group (null: none) and/or tier */
  | { kind: 'move'; group?: string | null; tier?: string }

export interface BulkRequest {
  selector: DeviceSelector
  action: BulkAction
  /** the most devices the caller lets this change; more would change -> GH_BULK_OVER_MAX and nothing changes */
  max: number
  /** report what would change, change nothing */
  dryRun?: boolean
}

export interface BulkResult {
  action: BulkAction['kind']
  dryRun: boolean
  /** the devices changed (or, in a dry run, that would be), in id order */
  deviceIds: string[]
}

/** The most devices one bulk action may change: one transaction holds the registry's write lock for all of them. */
export const MAX_BULK = 10_000
const PAGE = 1000

type Actor = string

function fieldChecked(field: 'group' | 'tier', value: unknown): void {
  if (typeof value !== 'string' || !GROUP_PATTERN.test(value)) throw new DeviceFieldInvalid(field, String(value).slice(0, 80))
}

/** A device's group, tier and labels, and bulk actions over selected devices (docs/api.md, README "The operator CLI"). */
export function createDeviceChanges(deps: {
  store: RegistryStore
  clock: Clock
  log: Logger
  record(actor: Actor, action: string, subject: string, details: Record<string, unknown>, events: ControlEvent[]): Promise<void>
  requireDevice(id: string): Promise<DeviceRecord>
  revokeInTransaction(id: string, reason: CrlReason, actor: Actor, extra?: Record<string, unknown>): Promise<string[]>
  setStatusInTransaction(id: string, status: Exclude<DeviceStatus, 'revoked'>, actor: Actor, extra?: Record<string, unknown>): Promise<void>
  refreshCrl(): Promise<unknown>
  /** reads the CA's keys if not yet (the CLI reads them on first use) */
  signingCa(): Promise<unknown>
}) {
  const { store, clock, log } = deps

  /** What would change on the device (from, to per field), or null when nothing would. */
  async function diff(device: DeviceRecord, update: DeviceUpdate): Promise<Record<string, { from: unknown; to: unknown }> | null> {
    const changes: Record<string, { from: unknown; to: unknown }> = {}
    if (update.group !== undefined && update.group !== device.group) changes.group = { from: device.group, to: update.group }
    if (update.tier !== undefined && update.tier !== device.tier) changes.tier = { from: device.tier, to: update.tier }
    if (update.labels !== undefined) {
      const from = await store.labels(device.id)
      const to = patchLabels(from, update.labels)
      if (JSON.stringify(Object.entries(from).sort()) !== JSON.stringify(Object.entries(to).sort())) changes.labels = { from, to }
    }
    return Object.keys(changes).length > 0 ? changes : null
  }

  /** Applies a change in the caller's transaction: one audit entry and one device.updated event; false when nothing changed. */
  async function updateInTransaction(
    id: string,
    update: DeviceUpdate,
    actor: Actor,
    extra: Record<string, unknown> = {},
  ): Promise<boolean> {
    const device = await deps.requireDevice(id)
    if (device.status === 'revoked') throw new DeviceRevoked(id)
    const changes = await diff(device, update)
    if (changes === null) return false
    const at = clock.now()
    await store.updateDeviceFields(id, { ...(changes.group && { group: update.group }), ...(changes.tier && { tier: update.tier }) }, at)
    if (changes.labels) await store.setLabels(id, changes.labels.to as Labels)
    await deps.record(actor, 'device.updated', id, { ...changes, ...extra }, [{ type: 'device.updated', deviceId: id }])
    return true
  }

  function checkUpdate(update: DeviceUpdate): void {
    if (update.group !== undefined && update.group !== null) fieldChecked('group', update.group)
    if (update.tier !== undefined) fieldChecked('tier', update.tier)
    if (update.labels !== undefined) {
      if (typeof update.labels !== 'object' || update.labels === null) throw new DeviceFieldInvalid('labels', String(update.labels))
      patchLabels({}, Object.fromEntries(Object.entries(update.labels).filter(([, v]) => v !== null)))
    }
  }

  /** Whether the action would change this device (the others it selects are left as they are). */
  async function changes(action: BulkAction, d: DeviceRecord): Promise<boolean> {
    if (action.kind === 'disable') return d.status === 'active'
    if (action.kind === 'enable') return d.status === 'disabled'
    if (d.status === 'revoked') return false
    if (action.kind === 'revoke') return true
    return (
      (await diff(d, {
        ...(action.group !== undefined && { group: action.group }),
        ...(action.tier !== undefined && { tier: action.tier }),
      })) !== null
    )
  }

  /** Devices the selector matches that the action would change, in id order; stops once there are more than max. */
  async function select(req: BulkRequest): Promise<DeviceRecord[]> {
    const picked: DeviceRecord[] = []
    let after: string | undefined
    for (;;) {
      const page = await store.listDevices({ ...req.selector, ...(after !== undefined && { after }), limit: PAGE })
      for (const d of page) {
        if (!(await changes(req.action, d))) continue
        picked.push(d)
        if (picked.length > req.max) throw new BulkOverMax(req.max)
      }
      if (page.length < PAGE) return picked
      after = page[page.length - 1]?.id
    }
  }

  function checkBulk(req: BulkRequest): void {
    const { selector, action } = req
    if (!Number.isSafeInteger(req.max) || req.max < 1 || req.max > MAX_BULK)
      throw new BulkInvalid(`max must be 1 to ${MAX_BULK}, not ${req.max}`)
    if (Object.values(selector).every((v) => v === undefined)) {
      throw new BulkInvalid('name at least one of group, labels, status, tier to select devices by')
    }
    if (selector.group !== undefined) fieldChecked('group', selector.group)
    if (selector.tier !== undefined) fieldChecked('tier', selector.tier)
    if (selector.labels !== undefined) assertLabels(selector.labels)
    if (action.kind === 'move') {
      if (action.group === undefined && action.tier === undefined) throw new BulkInvalid('a move needs a group or a tier to move to')
      checkUpdate({ ...(action.group !== undefined && { group: action.group }), ...(action.tier !== undefined && { tier: action.tier }) })
    }
  }

  async function apply(req: BulkRequest, d: DeviceRecord, actor: Actor): Promise<void> {
    const extra = { bulk: true }
    const { action } = req
    if (action.kind === 'revoke') await deps.revokeInTransaction(d.id, action.reason, actor, extra)
    else if (action.kind === 'disable') await deps.setStatusInTransaction(d.id, 'disabled', actor, extra)
    else if (action.kind === 'enable') await deps.setStatusInTransaction(d.id, 'active', actor, extra)
    else {
      const to = { ...(action.group !== undefined && { group: action.group }), ...(action.tier !== undefined && { tier: action.tier }) }
      await updateInTransaction(d.id, to, actor, extra)
    }
  }

  return {
    /** Sets the fields given; a revoked device cannot change. Nothing changed: no audit entry, no event. */
    async updateDevice(id: string, update: DeviceUpdate, actor: Actor): Promise<DeviceRecord> {
      assertDeviceId(id)
      checkUpdate(update)
      const changed = await store.transaction(async () => updateInTransaction(id, update, actor))
      if (changed) log.info({ deviceId: id, actor }, 'device updated')
      return deps.requireDevice(id)
    },

    /**
     * One action over every device a selector matches that it would change, in one transaction: all or
     * none, one audit entry per device (details.bulk), the events the single action writes (a running broker
     * disconnects revoked and disabled devices). The CRL is reissued once after a revoke.
     */
    async bulk(req: BulkRequest, actor: Actor, onProgress?: (done: number, total: number) => void): Promise<BulkResult> {
      checkBulk(req)
      const result = (deviceIds: string[]): BulkResult => ({ action: req.action.kind, dryRun: req.dryRun === true, deviceIds })
      if (req.dryRun) return result((await select(req)).map((d) => d.id))
      // the CRL is signed after the commit: its key is read first, so a CA key that cannot be read changes nothing
      if (req.action.kind === 'revoke') await deps.signingCa()
      const deviceIds = await store.transaction(async () => {
        const picked = await select(req)
        for (const [i, d] of picked.entries()) {
          await apply(req, d, actor)
          onProgress?.(i + 1, picked.length)
        }
        return picked.map((d) => d.id)
      })
      log.info({ action: req.action.kind, count: deviceIds.length, actor }, 'bulk action done')
      if (req.action.kind === 'revoke' && deviceIds.length > 0) await deps.refreshCrl()
      return result(deviceIds)
    },
  }
}
