// broker/: the data plane. Other folders import only this file (docs/conventions.md §2).

export { createBroker, type Broker } from './create-broker.ts'
export { CLUSTER_SCHEMA, connectCluster } from './cluster.ts'
export { leaveWorkers, receiveTicketKeys, reportListening, superviseWorkers, workerId } from './workers.ts'
export type { DevicePublish } from './create-mqtt-core.ts'
export { attachEnrollment } from './enrollment.ts'
export { LIMITS_SCHEMA, resolveLimits } from './limits.ts'
export { DEVICE_LIMITS_SCHEMA, deviceLimitProblems } from './device-limits.ts'
export { PROXY_PROTOCOL_SCHEMA, resolveProxyProtocol } from './proxy-protocol.ts'
export { trackPresence } from './presence.ts'
export { trackConnectionHistory } from './connection-history.ts'
export { trackTelemetry } from './telemetry-ring.ts'
export { attachSettingsDelivery } from './settings-delivery.ts'
export { attachRenewalNotices } from './renewal-notice.ts'
export {
  attachAiBridge,
  AI_BRIDGE_OPTIONS_SCHEMA,
  AI_LIMIT_VALUES_SCHEMA,
  resolveAiBridgeOptions,
  routeFor,
  type AiBridge,
} from './ai-bridge/index.ts'
export {
  attachTelemetryRoutes,
  deliverBatch,
  TELEMETRY_ROUTES_SCHEMA,
  type TelemetryRoutes,
} from './telemetry-routes/index.ts'
