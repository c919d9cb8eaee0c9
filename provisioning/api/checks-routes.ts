import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../certs/index.ts'
import { SEVERITIES, type CheckOptions, type CheckReport } from '../checks/index.ts'
import { scoped } from './route-helpers.ts'

export interface ChecksRoutesOptions {
  /** the fleet checks over the data directory (ControlPlane.checks) */
  checks(options: Partial<CheckOptions>): Promise<CheckReport>
  clock: Clock
}

/**
 * A report is reused for this long: the checks read the whole fleet on the broker's event loop (about
 * 0.3 ms a device), so a key with checks:read calling in a loop must not make the broker pay for each call.
 */
export const CHECKS_REUSE_MS = 30_000

/** One run shared by concurrent requests and reused for CHECKS_REUSE_MS; only the last silentDays is kept. */
function reusedChecks(opts: ChecksRoutesOptions) {
  let last: { silentDays: number; at: number; report: Promise<CheckReport> } | undefined
  return (silentDays: number): Promise<CheckReport> => {
    const now = opts.clock.now().getTime()
    if (last && last.silentDays === silentDays && now - last.at < CHECKS_REUSE_MS) return last.report
    const report = opts.checks({ silentDays })
    const entry = { silentDays, at: now, report }
    last = entry
    report.catch(() => {
      if (last === entry) last = undefined // a failed run is not reused
    })
    return report
  }
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
  const checks = reusedChecks(opts)
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
    async (request) => checks(request.query.silentDays),
  )
}
