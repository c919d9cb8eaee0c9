import type { FastifyInstance } from 'fastify'
import type { AppService } from '../apps/index.ts'
import { actorOf, scoped } from './route-helpers.ts'

const appParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{2,40}$' } },
  required: ['name'],
  additionalProperties: false,
} as const
const nullableString = { type: ['string', 'null'] } as const
const appView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    groups: { type: ['array', 'null'], items: { type: 'string' }, description: 'null: every group' },
    classes: { type: 'array', items: { type: 'string' } },
    status: { type: 'string', enum: ['active', 'revoked'] },
    createdAt: { type: 'string' },
    createdBy: { type: 'string' },
    revokedAt: nullableString,
    certificates: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          serial: { type: 'string' },
          fingerprint: { type: 'string' },
          notAfter: { type: 'string' },
          status: { type: 'string', enum: ['active', 'revoked'] },
          revokedAt: nullableString,
        },
        required: ['serial', 'fingerprint', 'notAfter', 'status', 'revokedAt'],
      },
    },
  },
  required: ['name', 'groups', 'classes', 'status', 'createdAt', 'createdBy', 'revokedAt', 'certificates'],
} as const

/**
 * App identities for MQTT (docs/api.md, "Apps"): list, show and revoke with `apps:admin`. Issuing stays
 * with the operator's CLI (`gatehouse app create`), which writes the bundle with the private key.
 */
export async function appRoutes(app: FastifyInstance, opts: { apps: AppService }): Promise<void> {
  const { apps } = opts
  app.get(
    '/apps',
    scoped('apps:admin', 'apps', 'Every app, with its scope and certificates', {
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: appView } }, required: ['items'] } },
    }),
    async () => ({ items: await apps.list() }),
  )
  app.get<{ Params: { name: string } }>(
    '/apps/:name',
    scoped('apps:admin', 'apps', 'One app, with its scope and certificates', { params: appParams, response: { 200: appView } }),
    async (request) => apps.get(request.params.name),
  )
  app.post<{ Params: { name: string } }>(
    '/apps/:name/revoke',
    scoped('apps:admin', 'apps', 'Revoke an app (permanent): its MQTT session is closed within a second, its certificates go on the CRL', {
      params: appParams,
      response: { 200: appView },
    }),
    async (request) => apps.revoke(request.params.name, actorOf(request)),
  )
}
