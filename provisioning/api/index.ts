// The HTTP API for apps. Imported by the composition root only where the API is served, so that CLI
// commands, which load provisioning/index.ts, do not pay for loading fastify.
export { buildApi } from './build-api.ts'
export { serveApi, isLoopback } from './serve-api.ts'
export { serveMetrics } from './metrics-server.ts'
export { countRefusals, memoryRateLimiters, type RateLimiterFactory } from './rate-limiter.ts'
