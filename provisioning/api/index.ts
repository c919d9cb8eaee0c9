// The HTTP API for apps. Imported by the composition root only where the API is served, so that CLI
// commands, which load provisioning/index.ts, do not pay for loading fastify (its types are re-exported
// there).
export { buildApi, API_VERSION, DEFAULT_BODY_LIMIT, type ApiDeps, type ApiOptions } from './build-api.ts'
export { serveApi, isLoopback, servesTls, type ServeApiOptions, type ServedApi } from './serve-api.ts'
export type { Presence } from './devices-routes.ts'
export { DEFAULT_RATE_LIMIT, type RateLimit } from './rate-limiter.ts'
