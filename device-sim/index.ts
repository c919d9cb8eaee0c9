// device-sim/: simulated devices and fleets. Other folders import only this file (CONVENTIONS.md §2).
export {
  closeClients,
  connectDevice,
  connectFleet,
  secureContextOf,
  type ConnectedDevice,
  type ConnectOptions,
  type ConnectOutcome,
  type DeviceBundle,
  type Fleet,
  type FleetOptions,
} from './fleet.ts'
export { SimulatedDevice, realTimers, type DeviceStats, type InsightMessage, type SimEvent, type SimulatedDeviceDeps, type SimulatedDeviceOptions } from './simulated-device.ts'
export { createSimulation, type Simulation, type SimulationOptions, type SimulationTotals } from './simulation.ts'
export { createTelemetryModel, gaussian, seededRandom, METRICS, type MetricName, type RandomSource, type TelemetryModel, type TelemetryReading } from './telemetry.ts'
export * from './device-settings.ts'
export { createPublishQueue, type Outgoing, type PublishQueue, type PublishQueueStats } from './publish-queue.ts'
export { createRenewer, renewalWindowOpens, type RenewOutcome } from './renewer.ts'
export {
  claimDevice,
  claimNonce,
  requestRenewal,
  issuedFrom,
  provisioningRequestTopic,
  provisioningResponseTopic,
  renewalRequestTopic,
  renewalResponseTopic,
  type ClaimBundle,
  type ClaimOptions,
  type ClaimResult,
  type IssuedAnswer,
  type RenewalOptions,
  type RenewalResult,
} from './enrollment.ts'
export { parseBrokerUrl, connectClient, type BrokerAddress } from './mqtt-session.ts'
export { readBundle, readBundles, writeBundle } from './bundle-files.ts'
export { registerSim, parseDuration, simIds, DEFAULT_BROKER_URL, type SimCliDeps, type SimProvisionOptions, type SimSummary } from './cli.ts'
export * from './errors.ts'
