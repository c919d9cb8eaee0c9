// broker/ai-bridge/: the AI telemetry bridge. Reached through broker/index.ts (CONVENTIONS.md §2).
export { attachAiBridge, type AiBridge, type AiBridgeCore } from './ai-bridge.ts'
export type {
  AiBridgeDeps,
  AnomalyKind,
  DeviceAiContext,
  Insight,
  InsightAnomaly,
  InsightSink,
  InsightUsage,
  ThrottleNotice,
  ThrottleReason,
  UsageCounters,
  UsageLedger,
} from './bridge-deps.ts'
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
export type { InsightProvider, InsightRequest, ProviderResult, TelemetrySample } from './providers/provider.ts'
export { signWebhookBody } from './providers/webhook.ts'
export { OPENAI_SYSTEM_PROMPT } from './providers/openai.ts'
export { toPrometheus, type AiBridgeStats, type ProviderStats } from './stats.ts'
export { createRedactor, redactString, type Redactor } from './redact.ts'
