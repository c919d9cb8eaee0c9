import { AiSecretMissing } from '../../errors.ts'
import type { AiBridgeOptions, ProviderName } from '../options.ts'
import { providersInUse } from '../routing.ts'
import type { HttpDeps } from './http.ts'
import { createLocalProvider } from './local.ts'
import { createOpenAiProvider } from './openai.ts'
import type { InsightProvider } from './provider.ts'
import { createWebhookProvider } from './webhook.ts'

/**
 * The providers the routes use, with their secrets resolved through `secret(name)` once, at attach:
 * a missing key stops start-up (GH_AI_SECRET_MISSING) instead of failing every request later.
 */
export function createProviders(
  options: Readonly<AiBridgeOptions>,
  deps: HttpDeps & { secret?: (name: string) => string | undefined },
): Map<ProviderName, InsightProvider> {
  const out = new Map<ProviderName, InsightProvider>()
  const resolve = (provider: string, name: string): string => {
    const v = deps.secret?.(name)
    if (v === undefined || v === '') throw new AiSecretMissing(provider, name)
    return v
  }
  for (const name of providersInUse(options)) {
    if (name === 'local') out.set(name, createLocalProvider(options.providers.local, { maxTrackedDevices: options.maxTrackedDevices }))
    if (name === 'openai' && options.providers.openai) {
      const o = options.providers.openai
      out.set(name, createOpenAiProvider(o, o.apiKeyEnv ? resolve('openai', o.apiKeyEnv) : undefined, deps))
    }
    if (name === 'webhook' && options.providers.webhook) {
      const o = options.providers.webhook
      out.set(name, createWebhookProvider(o, resolve('webhook', o.secretEnv), deps))
    }
  }
  return out
}
