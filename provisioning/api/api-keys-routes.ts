import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  DEFAULT_ROTATION_OVERLAP_SECONDS,
  MAX_ROTATION_OVERLAP_SECONDS,
  type ApiKey,
  type ApiKeyCaller,
  type ApiKeyService,
} from '../api-keys/api-key-service.ts'
import { API_KEY_NAME_PATTERN } from '../api-keys/api-key-service.ts'
import { API_SCOPES } from '../api-keys/scopes.ts'
import { actorOf, scoped } from './route-helpers.ts'

export interface ApiKeysRoutesOptions {
  apiKeys: Pick<ApiKeyService, 'create' | 'list' | 'revoke' | 'rotate'>
  /** drops a revoked key's rate bucket (its id); one revoked through the CLI is dropped when its bucket refills or its window expires */
  forgetRate?: (keyId: string) => Promise<void>
}

/** The longest relative expiry a new key may be given over the API: ten years. */
const MAX_EXPIRES_IN_SECONDS = 10 * 365 * 86_400
const dateOrNull = { type: ['string', 'null'], format: 'date-time' } as const

const apiKeySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: dateOrNull,
    lastUsedAt: dateOrNull,
    revokedAt: dateOrNull,
    previousSecretUntil: { ...dateOrNull, description: 'after a rotation: until when the previous secret still works' },
  },
  required: ['id', 'name', 'scopes', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt', 'previousSecretUntil'],
} as const

const withToken = {
  type: 'object',
  properties: { token: { type: 'string', description: 'the key, shown this once: Gatehouse keeps only a hash' }, key: apiKeySchema },
  required: ['token', 'key'],
} as const

const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: API_KEY_NAME_PATTERN.source } },
  required: ['name'],
  additionalProperties: false,
} as const

/** The calling key, for the audit actor and the no-escalation rule (a key manages only keys within its own scopes). */
function callerOf(request: FastifyRequest): ApiKeyCaller {
  return { actor: actorOf(request), scopes: request.apiKey?.scopes ?? [] }
}

/**
 * /v1/apikeys: create, list, revoke and rotate API keys, for keys with `apikeys:admin` (as `gatehouse
 * apikey` does for operators). A key never sees another key's secret, only the one it creates or rotates,
 * once; and it cannot create, rotate or revoke a key with a scope it lacks (GH_API_KEY_SCOPE_ESCALATION).
 */
export async function apiKeysRoutes(app: FastifyInstance, opts: ApiKeysRoutesOptions): Promise<void> {
  const { apiKeys } = opts

  app.get(
    '/apikeys',
    scoped('apikeys:admin', 'apikeys', 'List API keys, oldest first (never a secret)', {
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: apiKeySchema } }, required: ['items'] } },
    }),
    async () => ({ items: await apiKeys.list() }),
  )

  app.post<{ Body: { name: string; scopes: string[]; expiresAt?: string; expiresInSeconds?: number } }>(
    '/apikeys',
    scoped('apikeys:admin', 'apikeys', 'Create an API key with scopes the calling key holds; the key is in the answer, once', {
      body: {
        type: 'object',
        properties: {
          name: { type: 'string', pattern: API_KEY_NAME_PATTERN.source },
          scopes: {
            type: 'array',
            items: { type: 'string', enum: [...API_SCOPES] },
            minItems: 1,
            maxItems: API_SCOPES.length,
            uniqueItems: true,
          },
          expiresAt: { type: 'string', format: 'date-time', description: 'an absolute expiry, in the future' },
          expiresInSeconds: { type: 'integer', minimum: 1, maximum: MAX_EXPIRES_IN_SECONDS, description: 'or a relative one' },
        },
        required: ['name', 'scopes'],
        additionalProperties: false,
      },
      response: { 201: withToken },
    }),
    async (request, reply) => {
      const { name, scopes, expiresAt, expiresInSeconds } = request.body
      const created = await apiKeys.create(
        {
          name,
          scopes,
          ...(expiresAt !== undefined && { expiresAt: new Date(expiresAt) }),
          ...(expiresInSeconds !== undefined && { expiresInMs: expiresInSeconds * 1000 }),
        },
        callerOf(request),
      )
      return reply.code(201).send(created)
    },
  )

  app.post<{ Params: { name: string } }>(
    '/apikeys/:name/revoke',
    scoped('apikeys:admin', 'apikeys', 'Revoke an API key, permanently (its previous secret too)', {
      params: nameParams,
      response: { 200: apiKeySchema },
    }),
    async (request): Promise<ApiKey> => {
      const revoked = await apiKeys.revoke(request.params.name, callerOf(request))
      await opts.forgetRate?.(revoked.id)
      return revoked
    },
  )

  app.post<{ Params: { name: string }; Body: { overlapSeconds: number } }>(
    '/apikeys/:name/rotate',
    scoped('apikeys:admin', 'apikeys', 'A new secret for an API key; the old one works for overlapSeconds more', {
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          overlapSeconds: {
            type: 'integer',
            minimum: 0,
            maximum: MAX_ROTATION_OVERLAP_SECONDS,
            default: DEFAULT_ROTATION_OVERLAP_SECONDS,
            description: 'how long the old secret keeps working beside the new one (0: refused at once)',
          },
        },
        additionalProperties: false,
      },
      response: { 200: withToken },
    }),
    // overlapSeconds is there: the schema's default fills it in
    async (request) => apiKeys.rotate(request.params.name, { overlapSeconds: request.body.overlapSeconds }, callerOf(request)),
  )
}
