// broker/: the data plane. Other folders import only this file (docs/conventions.md §2).

export { createBroker, type Broker } from './create-broker.ts'
export type { DevicePublish } from './create-mqtt-core.ts'
export { attachEnrollment } from './enrollment.ts'
export { DEFAULT_LIMITS, LIMITS_SCHEMA, resolveLimits, type BrokerLimits, type BrokerLimitsInput } from './limits.ts'
export { PROXY_PROTOCOL_SCHEMA, resolveProxyProtocol, type ProxyProtocolInput, type ProxyProtocolOptions } from './proxy-protocol.ts'
export { trackPresence } from './presence.ts'
export { attachSettingsDelivery } from './settings-delivery.ts'
export {
  attachAiBridge,
  AI_BRIDGE_OPTIONS_SCHEMA,
  DEFAULT_REDACTED_FIELDS,
  DEFAULT_TEMPLATE,
  PREMIUM_LIMITS,
  PROVIDER_NAMES,
  STANDARD_LIMITS,
  resolveAiBridgeOptions,
  type AiBridge,
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
} from './ai-bridge/index.ts'
