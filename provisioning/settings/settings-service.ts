import type { ErrorObject, ValidateFunction } from 'ajv'
import type { Logger } from 'pino'
import { assertDeviceId, type Clock } from '../../certs/index.ts'
import {
  DeviceNotFound,
  DeviceRevoked,
  SettingsInvalid,
  SettingsSchemaViolation,
  SettingsScopeInvalid,
  SettingsTooLarge,
  SettingsVersionMismatch,
} from '../errors.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import type { DeviceSettingsRecord, LayerScope, SettingsStore } from '../store/settings-store.ts'
import {
  applyMergePatch,
  cut,
  delta,
  depthOf,
  digest,
  findBadKey,
  isObject,
  mergeLayers,
  shapeProblem,
  type JsonObject,
} from './json-document.ts'
import { createSchemaValidators, type SchemaValidatorLimits } from './schema-validators.ts'
import { describePatch, openSecrets, openSecretsForView, redactSecrets, sealSecrets, type SettingsCipher } from './secrets.ts'
import { DEFAULT_SETTINGS_LIMITS } from './settings-limits.ts'
import { payloadValidator, SETTINGS_REPORT_SCHEMA } from '../device-protocol/payload-schemas.ts'

export type SettingsTarget = { kind: 'fleet' } | { kind: 'group'; group: string } | { kind: 'device'; deviceId: string }

/** What apps and operators see of one device (secrets redacted). */
export interface DeviceSettingsView {
  deviceId: string
  version: number
  desired: JsonObject
  reported: { version: number | null; settings: JsonObject; at: string | null } | null
  delta: JsonObject
  inSync: boolean
  updatedAt: string
}

/** One layer (fleet defaults or a group), secrets redacted; revision is its If-Match value. */
export interface LayerView {
  scope: LayerScope
  document: JsonObject
  revision: number
  updatedAt: string | null
  updatedBy: string | null
}

/** What the broker sends to a device: clear secrets, over its TLS session only. */
export interface DeliverableSettings {
  version: number
  settings: JsonObject
  updatedAt: string
}

export interface SettingsLimits extends SchemaValidatorLimits {
  /** largest serialised layer document, bytes */
  maxBytes?: number
  maxDepth?: number
}

/** At most one "does not decrypt" warning per this many ms; the others are counted in the next one. */
const UNDECRYPTABLE_WARN_MS = 60_000
/** the report's shape, as the AsyncAPI document publishes it (provisioning/device-protocol/) */
const reportProblems = payloadValidator(SETTINGS_REPORT_SCHEMA)

export const GROUP_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

export function scopeOf(target: SettingsTarget): LayerScope {
  if (target.kind === 'fleet') return 'fleet'
  if (target.kind === 'group') {
    if (!GROUP_PATTERN.test(target.group))
      throw new SettingsScopeInvalid(`group '${target.group.slice(0, 80)}' (use 1-64 of A-Z a-z 0-9 . _ -)`)
    return `group:${target.group}`
  }
  return `device:${assertDeviceId(target.deviceId)}`
}

/**
 * Settings: fleet defaults < group < device overrides, merged into each device's effective document.
 * Every change that alters a device's effective document bumps that device's version (monotonic,
 * stored, never reused) and emits `settings.changed` for it, in the same transaction as the change and
 * its audit entry. Secrets are sealed at rest and redacted everywhere but delivery to the device.
 */
export function createSettingsService(
  deps: { store: RegistryStore; settings: SettingsStore; cipher: SettingsCipher; clock: Clock; log: Logger },
  limits: SettingsLimits = {},
) {
  const { store, settings, cipher, clock, log } = deps
  const maxBytes = limits.maxBytes ?? DEFAULT_SETTINGS_LIMITS.maxLayerBytes
  const maxDepth = limits.maxDepth ?? DEFAULT_SETTINGS_LIMITS.maxDepth
  const schemas = createSchemaValidators(limits)
  const undecryptable = { lastAt: -Infinity, suppressed: 0 }

  /** A stored secret that does not decrypt: shown as [secret] in views, one warning a minute. */
  function warnUndecryptable(where: Record<string, unknown>, err: unknown): void {
    const now = clock.now().getTime()
    if (now - undecryptable.lastAt < UNDECRYPTABLE_WARN_MS) {
      undecryptable.suppressed++
      return
    }
    const suppressed = undecryptable.suppressed
    Object.assign(undecryptable, { lastAt: now, suppressed: 0 })
    log.warn(
      { ...where, code: (err as { code?: string }).code, suppressed },
      'a stored secret setting does not decrypt: it is shown as [secret]; restore data/settings.key if secrets were sealed with another key',
    )
  }
  const openForView = (doc: JsonObject, where: Record<string, unknown>): JsonObject =>
    openSecretsForView(doc, cipher, (err) => warnUndecryptable(where, err))

  const layerDoc = async (scope: LayerScope): Promise<JsonObject> => (await settings.getLayer(scope))?.document ?? {}

  async function requireDevice(deviceId: string) {
    const device = await store.getDevice(assertDeviceId(deviceId))
    if (!device) throw new DeviceNotFound(deviceId)
    return device
  }

  /** A device's layers, fleet < group < device, as stored (secrets sealed); override replaces one of them. */
  async function layersOf(
    deviceId: string,
    group: string | null,
    override?: { scope: LayerScope; doc: JsonObject },
  ): Promise<JsonObject[]> {
    const pick = (scope: LayerScope) => (override?.scope === scope ? override.doc : layerDoc(scope))
    return Promise.all([pick('fleet'), ...(group ? [pick(`group:${group}`)] : []), pick(`device:${deviceId}`)])
  }

  /** The effective document of a device, secrets in clear. */
  async function effective(deviceId: string, group: string | null, override?: { scope: LayerScope; doc: JsonObject }): Promise<JsonObject> {
    return openSecrets(mergeLayers(...(await layersOf(deviceId, group, override))), cipher)
  }

  /** The device's version row, written at version 1 the first time anyone looks (a read that cannot write it: recordForRead). */
  async function ensureRecord(deviceId: string, group: string | null): Promise<DeviceSettingsRecord> {
    const existing = await settings.getDeviceSettings(deviceId)
    if (existing) return existing
    return store.transaction(async () => {
      const again = await settings.getDeviceSettings(deviceId)
      if (again) return again
      const record: DeviceSettingsRecord = {
        deviceId,
        version: 1,
        // a value that does not decrypt must not break every view of the device: the digest then differs and the next change bumps
        digest: digest(openForView(mergeLayers(...(await layersOf(deviceId, group))), { deviceId, part: 'desired' })),
        updatedAt: clock.now(),
        reported: null,
        reportedVersion: null,
        reportedAt: null,
      }
      await settings.putDeviceSettings(record)
      return record
    })
  }

  async function schemaValidator(group: string): Promise<ValidateFunction | undefined> {
    const record = await settings.getSchema(group)
    return record ? schemas.validatorFor(record.schema) : undefined
  }

  async function checkSchema(group: string, doc: JsonObject): Promise<void> {
    const validate = await schemaValidator(group)
    if (validate && !validate(doc)) throw new SettingsSchemaViolation(group, describeAjv(validate.errors))
  }

  function checkShape(patch: unknown): asserts patch is JsonObject {
    if (!isObject(patch)) throw new SettingsInvalid('(body)', 'a settings patch must be a JSON object (RFC 7396 merge patch)')
    const shape = shapeProblem(patch, maxDepth)
    if (shape?.tooDeep) throw new SettingsTooLarge(`depth over ${maxDepth} at ${shape.path}`, maxBytes, maxDepth)
    const bad = shape ?? findBadKey(patch)
    if (bad) throw new SettingsInvalid(bad.path, bad.problem)
  }

  /** store failures of a write that a read may ride out: it then shows the row it could not store */
  const WRITE_REFUSED = new Set(['GH_STORE_DISK_FULL', 'GH_STORE_LOCKED', 'GH_STORE_WRITE_FAILED'])
  let unrecorded = 0
  /**
   * What a read shows for a device: its version row, written at version 1 on the first look, so the version
   * (the API's ETag) changes whenever what a read showed changes: a fleet or group change bumps every row.
   * When that first write is refused (a full disk, a lock held past the busy timeout) the read still answers,
   * with the row it would have written (version 1 of the current document), unstored; logged at the first
   * such read and every 1,000th. The next read that can write stores it.
   */
  async function recordForRead(device: { id: string; group: string | null; createdAt: Date }): Promise<DeviceSettingsRecord> {
    try {
      return await ensureRecord(device.id, device.group)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === undefined || !WRITE_REFUSED.has(code)) throw err
      if (unrecorded++ % 1000 === 0)
        log.warn({ deviceId: device.id, code, unrecorded }, 'settings version row not written: the read shows version 1 unstored')
      return {
        deviceId: device.id,
        version: 1,
        digest: '',
        updatedAt: device.createdAt,
        reported: null,
        reportedVersion: null,
        reportedAt: null,
      }
    }
  }

  async function view(deviceId: string): Promise<DeviceSettingsView> {
    const device = await requireDevice(deviceId)
    const record = await recordForRead(device)
    const desired = openForView(mergeLayers(...(await layersOf(device.id, device.group))), { deviceId: device.id, part: 'desired' })
    const reported = record.reported ? openForView(record.reported, { deviceId: device.id, part: 'reported' }) : null
    const d = delta(desired, reported)
    return {
      deviceId: device.id,
      version: record.version,
      desired: redactSecrets(desired),
      reported: record.reported
        ? { version: record.reportedVersion, settings: redactSecrets(reported ?? {}), at: record.reportedAt?.toISOString() ?? null }
        : null,
      delta: redactSecrets(d),
      inSync: record.reportedVersion === record.version && Object.keys(d).length === 0,
      updatedAt: record.updatedAt.toISOString(),
    }
  }

  async function layerView(scope: LayerScope): Promise<LayerView> {
    const layer = await settings.getLayer(scope)
    return {
      scope,
      document: redactSecrets(openForView(layer?.document ?? {}, { scope })),
      revision: layer?.revision ?? 0,
      updatedAt: layer?.updatedAt.toISOString() ?? null,
      updatedBy: layer?.updatedBy ?? null,
    }
  }

  /** Recomputes affected devices; bumps and announces only those whose effective document changed. */
  async function bumpDevices(ids: Iterable<string>, at: Date): Promise<number> {
    let bumped = 0
    for (const id of ids) {
      const device = await store.getDevice(id)
      const record = await settings.getDeviceSettings(id)
      if (!device || !record) continue
      const next = digest(await effective(id, device.group))
      if (next === record.digest) continue
      await settings.putDeviceSettings({ ...record, version: record.version + 1, digest: next, updatedAt: at })
      await store.appendEvent('settings.changed', { deviceId: id, version: record.version + 1 }, at)
      bumped++
    }
    return bumped
  }

  async function patch(
    target: SettingsTarget,
    body: unknown,
    opts: { actor: string; ifMatch?: number },
  ): Promise<{ revision: number; devicesChanged: number }> {
    const scope = scopeOf(target)
    checkShape(body)
    cipher.assertUsable()
    const device = target.kind === 'device' ? await requireDevice(target.deviceId) : undefined
    if (device?.status === 'revoked') throw new DeviceRevoked(device.id)
    if (device) await ensureRecord(device.id, device.group)
    return store.transaction(async () => {
      const current = await settings.getLayer(scope)
      if (opts.ifMatch !== undefined) {
        const now = device ? ((await settings.getDeviceSettings(device.id))?.version ?? 1) : (current?.revision ?? 0)
        if (opts.ifMatch !== now) throw new SettingsVersionMismatch(opts.ifMatch, now)
      }
      const clearBefore = openSecrets(current?.document ?? {}, cipher)
      const clearAfter = applyMergePatch(clearBefore, body) as JsonObject
      const size = Buffer.byteLength(JSON.stringify(clearAfter))
      if (size > maxBytes || depthOf(clearAfter) > maxDepth)
        throw new SettingsTooLarge(`${size} bytes, depth ${depthOf(clearAfter)}`, maxBytes, maxDepth)
      const sealed = sealSecrets(clearAfter, cipher)
      // schema checks against the documents devices would get
      if (device?.group) await checkSchema(device.group, await effective(device.id, device.group, { scope, doc: sealed }))
      if (target.kind === 'group') await checkSchema(target.group, openSecrets(mergeLayers(await layerDoc('fleet'), sealed), cipher))
      if (target.kind === 'fleet')
        for (const g of await settings.schemaGroups())
          await checkSchema(g, openSecrets(mergeLayers(sealed, await layerDoc(`group:${g}`)), cipher))
      const at = clock.now()
      const revision = (current?.revision ?? 0) + 1
      await settings.putLayer({ scope, document: sealed, revision, updatedAt: at, updatedBy: opts.actor })
      const affected = device ? [device.id] : await settings.deviceIdsWithSettings(target.kind === 'group' ? target.group : undefined)
      const devicesChanged = await bumpDevices(affected, at)
      await store.appendAudit({
        at,
        actor: opts.actor,
        action: 'settings.changed',
        subject: device ? device.id : scope,
        details: { scope, revision, ...describePatch(body), devicesChanged },
      })
      log.info({ scope, revision, devicesChanged, actor: opts.actor }, 'settings changed')
      return { revision, devicesChanged }
    })
  }

  return {
    getDevice: view,
    getLayer: async (target: Exclude<SettingsTarget, { kind: 'device' }>): Promise<LayerView> => layerView(scopeOf(target)),
    /** A device's own override layer (what `settings get --device` shows next to the effective view). */
    getDeviceLayer: async (deviceId: string): Promise<LayerView> =>
      layerView(scopeOf({ kind: 'device', deviceId: (await requireDevice(deviceId)).id })),

    async patchDevice(deviceId: string, body: unknown, opts: { actor: string; ifMatch?: number }): Promise<DeviceSettingsView> {
      await patch({ kind: 'device', deviceId }, body, opts)
      return view(deviceId)
    },
    async patchLayer(
      target: Exclude<SettingsTarget, { kind: 'device' }>,
      body: unknown,
      opts: { actor: string; ifMatch?: number },
    ): Promise<LayerView & { devicesChanged: number }> {
      const { devicesChanged } = await patch(target, body, opts)
      return { ...(await layerView(scopeOf(target))), devicesChanged }
    },

    async setSchema(group: string, schema: unknown, actor: string): Promise<void> {
      scopeOf({ kind: 'group', group })
      if (!isObject(schema)) throw new SettingsInvalid('(schema)', 'a JSON Schema must be a JSON object')
      schemas.check(schema)
      await store.transaction(async () => {
        const at = clock.now()
        await settings.putSchema({ group, schema, updatedAt: at, updatedBy: actor })
        await store.appendAudit({ at, actor, action: 'settings.schema.set', subject: `group:${group}`, details: {} })
      })
    },
    getSchema: async (group: string) => (await settings.getSchema(group))?.schema ?? null,
    /** How many compiled schema validators are kept (bounded by maxCompiled). */
    compiledSchemas: (): number => schemas.size(),

    /** For the broker: the current document with secrets in clear. */
    async deliverable(deviceId: string): Promise<DeliverableSettings | undefined> {
      const device = await store.getDevice(deviceId)
      if (device?.status !== 'active') return undefined
      const record = await ensureRecord(device.id, device.group)
      return { version: record.version, settings: await effective(device.id, device.group), updatedAt: record.updatedAt.toISOString() }
    },

    /** Active devices whose last report names their current version, and the others (the metrics' sync gauge). */
    syncCounts: () => settings.syncCounts(),

    /** From the broker: a device's report on devices/{id}/settings/reported. Bad reports are refused, not stored. */
    async report(deviceId: string, payload: unknown): Promise<void> {
      if (reportProblems(payload) !== null || !isObject(payload) || !isObject(payload.settings)) {
        throw new SettingsInvalid('(report)', 'a report is {"version": <integer>, "settings": {...}}')
      }
      // a report is bounded like a layer, with the same headroom as its size (maxBytes * 2)
      const bad = shapeProblem(payload.settings, maxDepth * 2) ?? findBadKey(payload.settings)
      if (bad) throw new SettingsInvalid(`(report) settings.${bad.path}`, bad.problem)
      const device = await requireDevice(deviceId)
      const record = await ensureRecord(device.id, device.group)
      const reported = sealSecrets(payload.settings, cipher)
      if (Buffer.byteLength(JSON.stringify(reported)) > maxBytes * 2) throw new SettingsTooLarge('report', maxBytes * 2, maxDepth)
      await settings.putDeviceSettings({
        ...record,
        reported,
        reportedVersion: (payload.version as number | undefined) ?? null,
        reportedAt: clock.now(),
      })
    },
  }
}

export type SettingsService = ReturnType<typeof createSettingsService>

/** The first 10 violations, each path cut to 128 characters, and how many more there are. */
function describeAjv(errors: ErrorObject[] | null | undefined): string {
  const all = errors ?? []
  const shown = all.slice(0, 10).map((e) => `${cut(e.instancePath || '/')} ${e.message ?? 'is invalid'}`)
  return [...shown, ...(all.length > 10 ? [`and ${all.length - 10} more`] : [])].join('; ')
}
