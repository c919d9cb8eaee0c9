import fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics/index.ts'
import { metricsRoutes } from './metrics-routes.ts'
import { notFoundHandler, problemErrorHandler } from './problem.ts'
import type { ServedApi } from './serve-api.ts'

/**
 * The separate metrics listener (config metricsPort): GET /metrics and nothing else, without an API key,
 * so that a Prometheus on the same host or network scrapes without holding a key. It binds
 * metricsHost, loopback unless the operator names another address; it carries no keys, so it is plain HTTP.
 */
export async function serveMetrics(
  metrics: Pick<Metrics, 'render' | 'contentType'>,
  options: { host: string; port: number; log: Logger },
): Promise<ServedApi> {
  const app = fastify({
    loggerInstance: options.log.child({ module: 'metrics' }),
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance
  app.setErrorHandler(problemErrorHandler(1024))
  app.setNotFoundHandler(notFoundHandler)
  app.register(metricsRoutes, { metrics, public: true })
  await app.listen({ host: options.host, port: options.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  const shown = options.host.includes(':') ? `[${options.host}]` : options.host
  return { url: `http://${shown}:${port}`, port, close: () => app.close() }
}
