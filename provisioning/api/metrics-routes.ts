import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Metrics } from '../metrics/index.ts'
import { scoped } from './route-helpers.ts'

export interface MetricsRoutesOptions {
  metrics: Pick<Metrics, 'render' | 'contentType'>
  /** on the separate metrics listener (metricsPort): no API key; on the API: the metrics:read scope */
  public?: boolean
}

const SUMMARY = 'Prometheus metrics (text exposition format)'
const RESPONSE = { 200: { type: 'string', description: 'the series listed in the README, "Monitoring"' } }

/** GET /metrics: the Prometheus text exposition (docs/api.md; the series are listed in the README, "Monitoring"). */
export async function metricsRoutes(app: FastifyInstance, opts: MetricsRoutesOptions): Promise<void> {
  const handler = async (_request: unknown, reply: FastifyReply) =>
    reply.header('content-type', opts.metrics.contentType).send(await opts.metrics.render())
  if (opts.public)
    app.get('/metrics', { config: { public: true }, schema: { summary: SUMMARY, security: [], response: RESPONSE } }, handler)
  else app.get('/metrics', scoped('metrics:read', 'monitoring', SUMMARY, { response: RESPONSE }), handler)
}
