// The broker's option schemas and the checks JSON Schema cannot make, for config.ts: a second face of broker/ that loads no
// runtime (no aedes, ws, ioredis), so a CLI command that only reads the configuration does not pay for
// loading the data plane (docs/conventions.md §2). Everything else outside broker/ imports broker/index.ts.
import type { FromSchema } from '../certs/index.ts'

export { checkLimits, LIMITS_SCHEMA, resolveLimits } from './limits.ts'
export { DEVICE_LIMITS_SCHEMA, deviceLimitProblems } from './device-limits.ts'
export { checkProxyProtocol, PROXY_PROTOCOL_SCHEMA } from './proxy-protocol.ts'
export { AI_BRIDGE_OPTIONS_SCHEMA, AI_LIMIT_VALUES_SCHEMA, checkAiBridgeOptions } from './ai-bridge/options.ts'
export { TELEMETRY_ROUTES_SCHEMA } from './telemetry-routes/options.ts'

/** `cluster` in the configuration: absent = one process (Mode 1), present = a node of a cluster on this Redis. */
export const CLUSTER_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['redisUrl'],
  properties: {
    /** redis:// or rediss:// URL of the Redis (AOF on) the nodes share; a password in it is never logged */
    redisUrl: { type: 'string', pattern: '^rediss?://', maxLength: 2048 },
    /**
     * broker processes on this box (`--workers`, workers.ts): node:cluster workers on the same ports, each a
     * node of this cluster; absent = the number of cores; 1 = this process alone
     */
    workers: { type: 'integer', minimum: 1, maximum: 64 },
  },
} as const

export type ClusterOptions = FromSchema<typeof CLUSTER_SCHEMA>
