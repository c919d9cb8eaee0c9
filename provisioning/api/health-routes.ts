import type { FastifyInstance } from 'fastify'
import type { Health, HealthReport } from '../health/health.ts'

const reportSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'failed'] },
    checks: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { status: { type: 'string', enum: ['ok', 'failed'] }, code: { type: 'string' }, reason: { type: 'string' } },
        required: ['status'],
      },
    },
  },
  required: ['status', 'checks'],
} as const

/**
 * GET /healthz (liveness) and GET /readyz (readiness), public: load balancers and Kubernetes probe them
 * without a key. 200 when every named check passed, 503 naming the ones that failed (docs/api.md).
 */
export async function healthRoutes(app: FastifyInstance, opts: { health: Health }): Promise<void> {
  const route = (url: string, summary: string, report: () => Promise<HealthReport>) =>
    app.get(
      url,
      { config: { public: true }, schema: { summary, tags: ['health'], security: [], response: { 200: reportSchema, 503: reportSchema } } },
      async (_request, reply) => {
        const body = await report()
        reply.header('cache-control', 'no-store')
        return reply.code(body.status === 'ok' ? 200 : 503).send(body)
      },
    )
  route('/healthz', 'Liveness: the process is alive and its event loop answers (no API key)', () => opts.health.liveness())
  route('/readyz', 'Readiness: database writable, CA usable, MQTT listener accepting, change feed moving (no API key)', () =>
    opts.health.readiness(),
  )
}
