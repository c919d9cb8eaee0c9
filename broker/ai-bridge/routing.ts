import type { AiBridgeOptions, AiLimits, ProviderName } from './options.ts'

export interface Route {
  provider: ProviderName
  /** undefined: the provider's default model */
  model: string | undefined
  limits: AiLimits
}

/**
 * tier -> provider + model + limits, then the device's override on top. A device whose tier has no
 * entry gets `defaultTier`'s. A device override that switches provider without naming a model gets
 * that provider's default model, not the tier's.
 */
export function routeFor(options: Pick<AiBridgeOptions, 'tiers' | 'devices' | 'defaultTier'>, deviceId: string, tier: string): Route {
  const t = (Object.hasOwn(options.tiers, tier) ? options.tiers[tier] : undefined) ?? options.tiers[options.defaultTier]
  if (!t) throw new Error(`no tier '${tier}' and no default tier`) // resolveAiBridgeOptions() rules this out
  const o = Object.hasOwn(options.devices, deviceId) ? options.devices[deviceId] : undefined
  const provider = o?.provider ?? t.provider
  const model = o?.model ?? (provider === t.provider ? t.model : undefined)
  return { provider, model, limits: { ...t.limits, ...o?.limits } }
}

/** The providers some tier or device override routes to ('local' always, as the fallback of last resort). */
export function providersInUse(options: Pick<AiBridgeOptions, 'tiers' | 'devices'>): Set<ProviderName> {
  const used = new Set<ProviderName>(['local'])
  for (const t of Object.values(options.tiers)) used.add(t.provider)
  for (const d of Object.values(options.devices)) if (d.provider) used.add(d.provider)
  return used
}
