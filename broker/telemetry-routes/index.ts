// broker/telemetry-routes/: telemetry to HTTP endpoints. Reached through broker/index.ts (docs/conventions.md §2).
export { attachTelemetryRoutes, type TelemetryRoutes } from './telemetry-routes.ts'
export { deliverBatch } from './deliver.ts'
