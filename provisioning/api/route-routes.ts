import type { FastifyInstance } from 'fastify'
import type { RouteService, RouteTester } from '../routes/index.ts'
import { ROUTE_INPUT_SCHEMA } from '../routes/route-service.ts'
import { actorOf, scoped } from './route-helpers.ts'

/** What this process's broker knows of a route (counters, queue); absent when the broker is not here. */
export type RouteStatusOf = (id: string) => object | undefined

export interface RouteRoutesOptions {
  routes: RouteService
  tester: RouteTester
  status?: RouteStatusOf
}

const routeParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^rt_[0-9a-f]{12}$' } },
  required: ['id'],
  additionalProperties: false,
} as const
const counter = { type: 'integer' } as const
const statusView = {
  type: ['object', 'null'],
  description: "this node's delivery counters for the route (null: no broker in this process has loaded it yet)",
  properties: {
    received: counter,
    overflow: counter,
    delivered: counter,
    batches: counter,
    retries: counter,
    failed: counter,
    skipped: counter,
    queued: counter,
    lastDeliveryAt: { type: ['string', 'null'] },
    lastError: { type: ['string', 'null'] },
  },
} as const
const routeView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    group: { type: ['string', 'null'] },
    batchSize: counter,
    batchMs: counter,
    queueMax: counter,
    redact: { type: 'boolean' },
    consent: { type: 'boolean' },
    createdAt: { type: 'string' },
    createdBy: { type: 'string' },
    status: statusView,
  },
  required: ['id', 'url', 'group', 'batchSize', 'batchMs', 'queueMax', 'redact', 'consent', 'createdAt', 'createdBy'],
} as const
const createdView = {
  ...routeView,
  properties: {
    ...routeView.properties,
    secret: { type: 'string', description: 'the HMAC key of X-Gatehouse-Signature; shown only here' },
  },
  required: [...routeView.required, 'secret'],
} as const
const testView = {
  type: 'object',
  properties: { id: { type: 'string' }, url: { type: 'string' }, status: counter, body: { type: 'string' } },
  required: ['id', 'url', 'status', 'body'],
} as const

/**
 * Telemetry routes (docs/api.md, "Telemetry routes"): a group's or the fleet's telemetry POSTed in signed
 * batches to an HTTP endpoint. Reads need `routes:read`, changes and tests `routes:write`.
 */
export async function routeRoutes(app: FastifyInstance, opts: RouteRoutesOptions): Promise<void> {
  const { routes, tester } = opts
  const withStatus = <T extends { id: string }>(view: T) => ({ ...view, status: opts.status?.(view.id) ?? null })

  app.get(
    '/routes',
    scoped('routes:read', 'routes', 'Every telemetry route, with its delivery counters on this node', {
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: routeView } }, required: ['items'] } },
    }),
    async () => ({ items: (await routes.list()).map(withStatus) }),
  )
  app.get<{ Params: { id: string } }>(
    '/routes/:id',
    scoped('routes:read', 'routes', 'One telemetry route, with its delivery counters on this node', {
      params: routeParams,
      response: { 200: routeView },
    }),
    async (request) => withStatus(await routes.get(request.params.id)),
  )
  app.post<{ Body: unknown }>(
    '/routes',
    scoped(
      'routes:write',
      'routes',
      "Send a group's (or the fleet's) telemetry to an HTTP endpoint; the answer holds the signing secret, once",
      {
        body: ROUTE_INPUT_SCHEMA,
        response: { 201: createdView },
      },
    ),
    async (request, reply) => reply.code(201).send(await routes.create(request.body, actorOf(request))),
  )
  app.delete<{ Params: { id: string } }>(
    '/routes/:id',
    scoped('routes:write', 'routes', 'Delete a route: delivery stops within a second, what waits is dropped', {
      params: routeParams,
      response: { 200: routeView },
    }),
    async (request) => routes.delete(request.params.id, actorOf(request)),
  )
  app.post<{ Params: { id: string } }>(
    '/routes/:id/test',
    scoped('routes:write', 'routes', "Send one signed sample batch to the route's endpoint and return its answer", {
      params: routeParams,
      response: { 200: testView },
    }),
    async (request) => routes.test(request.params.id, actorOf(request), tester),
  )
}
