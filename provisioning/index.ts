// The control plane's public face: what other folders use of it. Other folders import provisioning/ only
// through this file; tests may import a module file directly.
export { createChangeFeed, type ChangeFeed, type ControlEvent } from './events.ts'
export { cachedDeviceContexts } from './device-contexts.ts'
export { createRegistryDirectory } from './registry-directory.ts'
export { createLastSeenRecorder } from './last-seen-recorder.ts'
export { keepCaCurrent, loadServerTls, rotateCa, showCa } from './ca/index.ts'
export { dataDirLayout } from './data-dir/layout.ts'
export { checkDataDir } from './checks/index.ts'
export { writeDeviceBundle } from './bundles/write-bundle.ts'
export { initControlPlane, openControlPlane, type ControlPlane } from './control-plane.ts'
export { cachedLimits, type LimitsPolicy } from './limits/index.ts'
export type { RouteTester } from './routes/index.ts'
export { createHealth, type Health } from './health/health.ts'
export { caCheck, changeFeedCheck, databaseCheck } from './health/control-plane-checks.ts'
export { type EventLoopDelay, eventLoopCheck, monitorEventLoop } from './health/event-loop.ts'
export { healthTarget } from './health/health-client.ts'
// The HTTP API (buildApi, serveApi) lives in ./api/index.ts: importing fastify and its OpenAPI plugin
// here would add ~0.4 s to every CLI command. Import it from there where the API is served.
// the control plane's parts of the configuration schema, embedded by config.ts
export { DEFAULT_RATE_LIMIT, rateLimitSchema } from './api/rate-limiter.ts'
export { DEFAULT_CLAIM_REQUEST_RATE } from './enrollment/enrollment-service.ts'
export { SETTINGS_LIMITS_SCHEMA } from './settings/settings-limits.ts'
