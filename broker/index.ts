// broker/: the data plane. Other folders import only this file (docs/conventions.md §2).

export { createBroker, type Broker } from './create-broker.ts'
export { connectCluster } from './cluster.ts'
export { leaveWorkers, receiveTicketKeys, reportListening, superviseWorkers, workerId } from './workers.ts'
export type { DevicePublish } from './create-mqtt-core.ts'
export { attachEnrollment } from './enrollment.ts'
export { trackPresence } from './presence.ts'
export { trackConnectionHistory } from './connection-history.ts'
export { trackTelemetry } from './telemetry-ring.ts'
export { attachSettingsDelivery } from './settings-delivery.ts'
export { attachRenewalNotices } from './renewal-notice.ts'
export { attachAiBridge, resolveAiBridgeOptions, routeFor, type AiBridge } from './ai-bridge/index.ts'
export { attachTelemetryRoutes, deliverBatch, type TelemetryRoutes } from './telemetry-routes/index.ts'
