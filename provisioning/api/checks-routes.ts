import type { FastifyInstance } from 'fastify'
import { SEVERITIES, type CheckOptions, type CheckReport } from '../checks/index.ts'
import { scoped } from './route-helpers.ts'

export interface ChecksRoutesOptions {
  /** the fleet checks over the data directory (ControlPlane.checks) */
  checks(options: Partial<CheckOptions>): Promise<CheckReport>
}

const findingSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    severity: { type: 'string', enum: [...SEVERITIES] },
    title: { type: 'string' },
    objects: {
      type: 'object',
      properties: { kind: { type: 'string' }, ids: { type: 'array', items: { type: 'string' } }, count: { type: 'integer' } },
      required: ['kind', 'ids', 'count'],
    },
    fix: { type: 'string' },
  },
  required: ['id', 'severity', 'title', 'objects', 'fix'],
} as const

/** /v1/checks: the fleet audit checks, as `gatehouse check --json` prints them. */
export async function checksRoutes(app: FastifyInstance, opts: ChecksRoutesOptions): Promise<void> {
  app.get<{ Querystring: { silentDays: number } }>(
    '/checks',
    scoped('checks:read', 'checks', 'Audit the fleet: expiring certificates and CAs, shared keys, silent devices, loose credentials', {
      querystring: {
        type: 'object',
        properties: { silentDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 } },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            checkedAt: { type: 'string', format: 'date-time' },
            findings: { type: 'array', items: findingSchema },
            counts: { type: 'object', properties: Object.fromEntries(SEVERITIES.map((s) => [s, { type: 'integer' }])) },
          },
          required: ['checkedAt', 'findings', 'counts'],
        },
      },
    }),
    async (request) => opts.checks({ silentDays: request.query.silentDays }),
  )
}
