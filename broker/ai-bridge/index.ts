// broker/ai-bridge/: the AI telemetry bridge. Reached through broker/index.ts (docs/conventions.md §2).
export { attachAiBridge, type AiBridge } from './ai-bridge.ts'
export {
  AI_BRIDGE_OPTIONS_SCHEMA,
  DEFAULT_REDACTED_FIELDS,
  DEFAULT_TEMPLATE,
  PREMIUM_LIMITS,
  PROVIDER_NAMES,
  STANDARD_LIMITS,
  resolveAiBridgeOptions,
  type AiBridgeOptions,
  type AiBridgeOptionsInput,
  type AiDeviceOverride,
  type AiLimits,
  type AiTierRoute,
  type LocalProviderOptions,
  type OpenAiProviderOptions,
  type ProviderName,
  type RedactionRule,
  type WebhookProviderOptions,
} from './options.ts'
