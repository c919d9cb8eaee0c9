import { deepFreeze, type FromSchema } from '../../certs/index.ts'

/**
 * Telemetry routes (docs/architecture.md, "Telemetry routes"): the fleet-wide options. A route's own
 * batch size, batch interval and queue bound are stored with it in the registry (provisioning/routes/).
 */
export const TELEMETRY_ROUTES_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** how many routes the registry may hold (over it: GH_ROUTE_LIMIT) */
    maxRoutes: { type: 'integer', minimum: 0, maximum: 256, default: 16 },
    /**
     * let a route target loopback, private, link-local or other non-public addresses (an SSRF risk: an app
     * with routes:write could reach the broker's own network); off by default, only the operator turns it on
     */
    allowPrivateTargets: { type: 'boolean', default: false },
    /** one POST, from connect to the whole answer */
    timeoutMs: { type: 'integer', minimum: 100, maximum: 60_000, default: 5000 },
    /** retries after a 5xx, a 429, a timeout or a network error back off exponentially up to this; a Retry-After is honoured up to it too */
    maxBackoffMs: { type: 'integer', minimum: 10, maximum: 300_000, default: 30_000 },
  },
} as const

export type TelemetryRoutesOptions = FromSchema<typeof TELEMETRY_ROUTES_SCHEMA>

export function resolveTelemetryRoutesOptions(input: Partial<TelemetryRoutesOptions> = {}): Readonly<Required<TelemetryRoutesOptions>> {
  return deepFreeze({ maxRoutes: 16, allowPrivateTargets: false, timeoutMs: 5000, maxBackoffMs: 30_000, ...input })
}
