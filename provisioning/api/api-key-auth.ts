import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ApiKey, ApiKeyService } from '../api-keys/api-key-service.ts'
import type { ApiScope } from '../api-keys/scopes.ts'
import { ApiKeyMissing, ApiKeyScopeMissing, ApiRateLimited, ApiTokenInQuery } from '../errors.ts'
import type { RateLimiter } from './rate-limiter.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the one scope a key needs for this route; a route with neither scope nor public is refused to all */
    scope?: ApiScope
    /** no API key needed (health check, OpenAPI document) */
    public?: boolean
    /** guarded by a dashboard session instead of an API key (provisioning/dashboard/) */
    session?: boolean
  }
  interface FastifyRequest {
    /** the verified key of this request (null on public routes) */
    apiKey: ApiKey | null
  }
}

export interface ApiKeyAuthOptions {
  apiKeys: Pick<ApiKeyService, 'verify'>
  limiter: RateLimiter
}

const TOKEN_PARAM = /^(access[_-]?token|api[_-]?key|token|key|auth|authorization|bearer)$/i
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i

/** A key in the URL is refused even on public routes: URLs are logged by proxies and servers alike. */
function tokenInQuery(query: unknown): boolean {
  if (typeof query !== 'object' || query === null) return false
  return Object.entries(query).some(
    ([name, value]) => TOKEN_PARAM.test(name) || [value].flat().some((v) => typeof v === 'string' && v.includes('ghk_')),
  )
}

function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization
  if (typeof header !== 'string' || header.trim() === '') throw new ApiKeyMissing()
  const m = BEARER.exec(header)
  if (!m) throw new ApiKeyMissing()
  return m[1] as string
}

/**
 * The API-key check, as an onRequest hook on every route of the instance (fastify-plugin lifts it out
 * of its own encapsulation). In order: a key in the URL query is 400; no Bearer key is 401; a key that
 * does not verify is 401 (one error for every reason); over the key's rate is 429 with Retry-After;
 * a key without the route's scope is 403. Routes say what they need in `config: { scope }`.
 */
async function apiKeyAuthPlugin(app: FastifyInstance, opts: ApiKeyAuthOptions): Promise<void> {
  app.decorateRequest('apiKey', null)
  app.addHook('onRequest', async (request, reply) => {
    if (tokenInQuery(request.query)) throw new ApiTokenInQuery()
    const config = request.routeOptions.config
    if (config.public || config.session || request.is404) return
    const key = await opts.apiKeys.verify(bearerToken(request))
    const decision = await opts.limiter.take(key.id)
    if (!decision.ok) throw Object.assign(new ApiRateLimited(decision.retryAfterSeconds), { retryAfterSeconds: decision.retryAfterSeconds })
    if (config.scope === undefined || !key.scopes.includes(config.scope)) throw new ApiKeyScopeMissing(config.scope ?? '(none declared)')
    request.apiKey = key
    // answers carry device data and settings: no shared cache may keep them
    reply.header('cache-control', 'no-store')
  })
}

export const apiKeyAuth = fp(apiKeyAuthPlugin, { name: 'gatehouse-api-key-auth', fastify: '5.x' })
