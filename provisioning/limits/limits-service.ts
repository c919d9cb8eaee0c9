import type { Logger } from 'pino'
import { assertDeviceId, type Clock } from '../../certs/index.ts'
import { DeviceNotFound, LimitsInvalid, TierUnknown } from '../errors.ts'
import type { LimitsRecord, LimitsStore } from '../store/limits-store.ts'
import type { RegistryStore } from '../store/registry-store.ts'

/**
 * A limits document, as a tier or a device sets it: the broker's per-device limits (`broker`:
 * publishRate, publishBytesRate, packetRate, each a token bucket's ratePerSecond and burst) and the AI
 * budgets (`ai`: requestsPerMinute, burst, dailyRequests, dailyTokens). Everything is optional: a value
 * left out comes from the tier, then from the configuration. The shape and ranges are the broker's
 * schemas (LIMITS_SCHEMA's pieces), which config.ts composes into the LimitsPolicy below.
 */
export interface LimitValues {
  broker?: Record<string, { ratePerSecond?: number; burst?: number }>
  ai?: Record<string, number>
}

/** What the configuration says about limits documents (config.ts limitsPolicy). */
export interface LimitsPolicy {
  /** the tiers there are (the configured ones); any other is refused with GH_TIER_UNKNOWN */
  tiers: readonly string[]
  /** the JSON Schema of a limits document (the API's body schema and its OpenAPI) */
  schema: Record<string, unknown>
  /** every problem with a document (ranges, and the rules relating it to the global limits); [] when valid */
  problems(values: unknown): string[]
}

export interface TierLimitsView {
  tier: string
  limits: LimitValues
  /** null: never set here, the configuration's limits apply */
  updatedAt: string | null
  updatedBy: string | null
}

export interface DeviceLimitsView {
  deviceId: string
  tier: string
  /** the device's own values (null: none) */
  override: LimitValues | null
  /** its tier's values */
  tierLimits: LimitValues
  /** what applies over the configured limits: the tier's values with the device's own on top */
  applied: LimitValues
  updatedAt: string | null
  updatedBy: string | null
}

export type LimitsService = ReturnType<typeof createLimitsService>

/** The values that apply to a device: its tier's stored values under its own (unset: the configured limits). */
export interface AppliedLimits {
  tier: string
  /** the device's group now (the broker's view of a live session follows it) */
  group: string | null
  broker: NonNullable<LimitValues['broker']>
  ai: NonNullable<LimitValues['ai']>
}

/** The two documents merged: the device's values over the tier's, bucket by bucket. */
export function mergeLimits(tier: LimitValues, own: LimitValues | null): LimitValues {
  const broker: NonNullable<LimitValues['broker']> = { ...tier.broker }
  for (const [name, bucket] of Object.entries(own?.broker ?? {})) broker[name] = { ...broker[name], ...bucket }
  return { broker, ai: { ...tier.ai, ...own?.ai } }
}

/**
 * Per-tier and per-device limits in the registry (docs/architecture.md, "The limits"). A change commits
 * with its audit entry and its event (`tier.updated`, or `device.updated` for a device's own values),
 * which the broker follows to apply it to connected devices; bad input is refused and stores nothing.
 */
export function createLimitsService(deps: { store: RegistryStore; limits: LimitsStore; clock: Clock; log: Logger }, policy: LimitsPolicy) {
  const { store, limits, clock } = deps
  const tiers = async () => [...new Set([...policy.tiers, ...(await limits.listTiers()).map((r) => r.key)])].sort()
  const valuesOf = (r: LimitsRecord | undefined): LimitValues => (r?.limits as LimitValues | undefined) ?? {}

  function checked(values: unknown): LimitValues {
    const problems = policy.problems(values)
    if (problems.length > 0) throw new LimitsInvalid(problems.join('; '))
    return values as LimitValues
  }

  async function requireDevice(deviceId: string) {
    const device = await store.getDevice(assertDeviceId(deviceId))
    if (!device) throw new DeviceNotFound(deviceId)
    return device
  }

  async function tierView(tier: string): Promise<TierLimitsView> {
    const r = await limits.getTier(tier)
    return { tier, limits: valuesOf(r), updatedAt: r?.updatedAt.toISOString() ?? null, updatedBy: r?.updatedBy ?? null }
  }

  async function deviceView(deviceId: string): Promise<DeviceLimitsView> {
    const device = await requireDevice(deviceId)
    const r = await limits.getDevice(device.id)
    const tierLimits = valuesOf(await limits.getTier(device.tier))
    const override = r ? valuesOf(r) : null
    return {
      deviceId: device.id,
      tier: device.tier,
      override,
      tierLimits,
      applied: mergeLimits(tierLimits, override),
      updatedAt: r?.updatedAt.toISOString() ?? null,
      updatedBy: r?.updatedBy ?? null,
    }
  }

  async function commit(actor: string, action: string, subject: string, details: Record<string, unknown>, event: Record<string, unknown>) {
    const at = clock.now()
    await store.appendAudit({ at, actor, action, subject, details })
    const { type, ...data } = event
    await store.appendEvent(String(type), data, at)
    return at
  }

  async function applied(deviceId: string, known?: { tier: string; group: string | null }): Promise<AppliedLimits | null> {
    const device = known ?? (await store.getDevice(deviceId))
    if (!device) return null
    const r = await limits.getDevice(deviceId)
    const values = mergeLimits(valuesOf(await limits.getTier(device.tier)), r ? valuesOf(r) : null)
    return { tier: device.tier, group: device.group, broker: values.broker ?? {}, ai: values.ai ?? {} }
  }

  return {
    schema: policy.schema,
    /** every tier there is (configured, or with stored values), with its stored values */
    listTiers: async (): Promise<TierLimitsView[]> => Promise.all((await tiers()).map(tierView)),
    async getTier(tier: string): Promise<TierLimitsView> {
      if (!(await tiers()).includes(tier)) throw new TierUnknown(String(tier).slice(0, 64), policy.tiers.join(', '))
      return tierView(tier)
    },
    /** Replaces a tier's values (PUT): `{}` puts it back on the configured limits. */
    async setTier(tier: string, values: unknown, actor: string): Promise<TierLimitsView> {
      if (!policy.tiers.includes(tier)) throw new TierUnknown(String(tier).slice(0, 64), policy.tiers.join(', '))
      const doc = checked(values)
      await store.transaction(async () => {
        const at = await commit(actor, 'tier.updated', tier, { limits: doc }, { type: 'tier.updated', tier })
        await limits.putTier({ key: tier, limits: doc as Record<string, unknown>, updatedAt: at, updatedBy: actor })
      })
      return tierView(tier)
    },
    getDevice: deviceView,
    /** Replaces a device's own values (PUT). */
    async setDevice(deviceId: string, values: unknown, actor: string): Promise<DeviceLimitsView> {
      const device = await requireDevice(deviceId)
      const doc = checked(values)
      await store.transaction(async () => {
        const at = await commit(actor, 'device.limits.updated', device.id, { limits: doc }, { type: 'device.updated', deviceId: device.id })
        await limits.putDevice({ key: device.id, limits: doc as Record<string, unknown>, updatedAt: at, updatedBy: actor })
      })
      return deviceView(device.id)
    },
    /** Removes a device's own values: its tier's apply again. Nothing to remove changes nothing. */
    async clearDevice(deviceId: string, actor: string): Promise<DeviceLimitsView> {
      const device = await requireDevice(deviceId)
      await store.transaction(async () => {
        if (await limits.deleteDevice(device.id))
          await commit(actor, 'device.limits.cleared', device.id, {}, { type: 'device.updated', deviceId: device.id })
      })
      return deviceView(device.id)
    },
    /**
     * The broker's and the AI bridge's source (DeviceLimitsSource, AiBridgeDeps.limitsOf): a device's
     * tier and the values that apply to it; null for an unknown device. `device`: its tier and group as the
     * caller has just read them (the broker at CONNECT, from the directory's answer): the device is not read again.
     */
    async limitsOf(deviceId: string, device?: { tier: string; group: string | null }): Promise<AppliedLimits | null> {
      return applied(deviceId, device)
    },
  }
}

/** The policy when the configuration gives none (tests that do not touch limits): no tier may be set. */
export const NO_LIMITS_POLICY: LimitsPolicy = { tiers: [], schema: { type: 'object' }, problems: () => ['no limits schema configured'] }
