// broker/: the data plane. Other folders import only this file (CONVENTIONS.md §2).

export { createBroker, type Broker, type BrokerOptions, type BrokerTlsOptions } from './create-broker.ts'
export {
  createMqttCore,
  type BrokerDeps,
  type MqttCore,
  type DevicePublish,
  type DeviceSubscribe,
  type DeviceConnection,
  type PublishToDeviceOptions,
  type ClaimRequest,
  type RenewalRequest,
  type Unsubscribe,
} from './create-mqtt-core.ts'
export type {
  AuditRecord,
  ClaimLookup,
  ControlEvent,
  DeviceDirectory,
  DeviceLookup,
  RefusalReason,
} from './device-directory.ts'
export {
  attachEnrollment,
  MAX_QUEUED_REQUESTS,
  type ClaimRequestContext,
  type EnrollmentAnswer,
  type EnrollmentCore,
  type EnrollmentService,
  type RenewalRequestContext,
} from './enrollment.ts'
export { DEFAULT_LIMITS, resolveLimits, type BrokerLimits, type BrokerLimitsInput } from './limits.ts'
export { resolveProxyProtocol, type ProxyProtocolInput, type ProxyProtocolOptions } from './proxy-protocol.ts'
export { canPublish, canSubscribe, canPublishTo, canSubscribeTo, type PolicyDecision, type PolicyRefusal } from './topic-policy.ts'
export {
  parseDeviceTopic,
  telemetryTopic,
  settingsTopic,
  settingsReportedTopic,
  insightsTopic,
  renewalRequestTopic,
  renewalResponseTopic,
  claimRequestTopic,
  claimResponseTopic,
  deviceGrants,
  claimGrants,
  type DeviceTopic,
  type DeviceTopicKind,
  type TopicGrants,
} from './topics.ts'
export {
  createTokenBucket,
  createKeyedTokenBuckets,
  type TokenBucket,
  type TokenBucketOptions,
  type KeyedTokenBuckets,
} from './token-bucket.ts'
export { REASON_CODES, SUBACK_FAILURE, toConnackCode } from './reason-codes.ts'
export type { ConnectRefusal } from './hooks/authenticate.ts'
export * from './errors.ts'
export { trackPresence, type DevicePresence } from './presence.ts'
export { attachSettingsDelivery, type SettingsDocument, type SettingsSource } from './settings-delivery.ts'
export * from './ai-bridge/index.ts'
