import type { FastifyRequest } from 'fastify'
import { apiKeyActor } from '../api-keys/api-key-service.ts'
import type { ApiScope } from '../api-keys/scopes.ts'
import { ApiValidation } from '../errors.ts'
import { problemResponses } from './schemas.ts'

/**
 * A route that declares no body takes none: anything but no body or `{}` is refused (GH_API_VALIDATION)
 * rather than ignored, so a field a client believes is used (a revoke's reason) or a hostile document is
 * never accepted in silence. A body schema cannot say it: fastify refuses an absent body against one.
 */
async function refuseBody(request: FastifyRequest): Promise<void> {
  const body = request.body
  if (body === undefined || body === null) return
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return
  throw Object.assign(new ApiValidation('body must be empty: this route takes none'), {
    fields: [{ field: 'body', message: 'must be empty: this route takes none' }],
  })
}

/** Route options for an endpoint that needs `scope`: the auth hook reads config, OpenAPI reads schema. */
export function scoped<S extends Record<string, unknown>>(scope: ApiScope, tag: string, summary: string, schema: S) {
  return {
    ...(schema.body === undefined && { preValidation: refuseBody }),
    config: { scope },
    schema: {
      tags: [tag],
      summary,
      description: `Needs an API key with the scope \`${scope}\`.`,
      'x-gatehouse-scope': scope,
      ...schema,
      response: { ...(schema.response as Record<string, unknown> | undefined), ...problemResponses },
    },
  }
}

/** The audit actor of an authenticated request: `apikey:<name>`. */
export function actorOf(request: FastifyRequest): string {
  if (!request.apiKey) throw new Error('route reached without an API key: its config declares no scope')
  return apiKeyActor(request.apiKey)
}

/**
 * If-Match as a settings version: `"3"` or `3` (RFC 9110 wants the quotes; bare numbers are accepted),
 * `*` or no header = no precondition. Anything else (weak tags, lists) is a 400 naming the header.
 */
export function parseIfMatch(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined
  const value = (Array.isArray(header) ? header.join(',') : header).trim()
  if (value === '*') return undefined
  const m = /^(?:"(\d{1,15})"|(\d{1,15}))$/.exec(value)
  if (!m) {
    const message = 'must be one version, e.g. "3" (the ETag of the last read)'
    throw Object.assign(new ApiValidation(`headers.if-match ${message}`), { fields: [{ field: 'headers.if-match', message }] })
  }
  return Number(m[1] ?? m[2])
}

export const etag = (version: number): string => `"${version}"`
