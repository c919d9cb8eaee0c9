/**
 * The fixed list of API key scopes. Each HTTP route declares exactly one (provisioning/api/); a key
 * may call a route only if it holds that scope. There is no wildcard: a key gets what it is given.
 */
export const API_SCOPES = [
  'devices:read',
  'devices:revoke',
  'settings:read',
  'settings:write',
  'insights:read',
  'dashboard',
  'checks:read',
  'metrics:read',
  'tiers:write',
  'apikeys:admin',
  'devices:write',
  'telemetry:read',
  'routes:read',
  'routes:write',
  'apps:admin',
] as const

export type ApiScope = (typeof API_SCOPES)[number]

export function isApiScope(value: unknown): value is ApiScope {
  return typeof value === 'string' && (API_SCOPES as readonly string[]).includes(value)
}
