import cookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Clock, CrlReason } from '../../certs/index.ts'
import type { ApiKey, ApiKeyService } from '../api-keys/api-key-service.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { actorOf } from '../api/route-helpers.ts'
import { crlReasonSchema, deviceParams } from '../api/schemas.ts'
import { ApiKeyScopeMissing, DashboardCsrf, DashboardOrigin, DashboardSessionMissing } from '../errors.ts'
import type { Asset } from './assets.ts'
import type { FleetView } from './fleet-view.ts'
import type { LiveStream } from './live-stream.ts'
import { tokensEqual, type DashboardSession, type SessionStore } from './sessions.ts'
import type { SignInLimit } from './sign-in-limit.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** a dashboard page: without a session it redirects to the sign-in page instead of answering 401 */
    page?: boolean
    /** the sign-in page and its POST and the static files: no session needed */
    open?: boolean
  }
  interface FastifyRequest {
    dashboardSession: DashboardSession | null
  }
}

export interface DashboardRoutesOptions {
  authority: DeviceAuthority
  apiKeys: Pick<ApiKeyService, 'verify' | 'get'>
  sessions: SessionStore
  signIn: SignInLimit
  fleet: FleetView
  live: LiveStream
  assets: Map<string, Asset>
  clock: Clock
  log: Logger
}

const COOKIE = 'gatehouse_session'
const PATH = '/dashboard'
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

/** The key behind a session must still be live and unrevoked, with the dashboard scope (it never changes). */
async function liveKey(apiKeys: DashboardRoutesOptions['apiKeys'], session: DashboardSession, now: Date): Promise<ApiKey | undefined> {
  const key = await apiKeys.get(session.keyName)
  if (!key || key.id !== session.keyId || key.revokedAt !== null) return undefined
  return key.expiresAt === null || key.expiresAt.getTime() > now.getTime() ? key : undefined
}

/** An Origin header, when the browser sends one, must be this server's own. */
function checkOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin
  if (origin === undefined) return
  if (origin !== `${request.protocol}://${request.headers.host}`) throw new DashboardOrigin(String(origin).slice(0, 100))
}

function checkCsrf(request: FastifyRequest): void {
  const sent = request.headers['x-csrf-token']
  const session = request.dashboardSession
  if (!session || typeof sent !== 'string' || !tokensEqual(sent, session.csrfToken)) throw new DashboardCsrf()
}

/**
 * The dashboard under /dashboard: static pages and files, JSON data routes, a server-sent event stream
 * and device actions. Guarded by a session cookie (docs/api.md, "Dashboard"), not by a Bearer key: the
 * API-key hook skips routes marked `session`. Every POST needs the session's CSRF token and, when the
 * browser names one, this server's Origin.
 */
export async function dashboardRoutes(app: FastifyInstance, opts: DashboardRoutesOptions): Promise<void> {
  const { authority, sessions, fleet, live } = opts
  await app.register(cookie)
  app.decorateRequest('dashboardSession', null)

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS)
    const config = request.routeOptions.config
    if (request.method === 'POST') checkOrigin(request)
    if (config.open || request.is404) return
    const id = request.cookies[COOKIE]
    const session = await sessions.get(id)
    const key = session && (await liveKey(opts.apiKeys, session, opts.clock.now()))
    if (!session || !key) {
      // a cookie of no live session: an expired one was removed by the lookup, one of a dead key goes now
      if (session) await sessions.discard(session)
      if (config.page) return reply.redirect(`${PATH}/sign-in`, 303)
      throw new DashboardSessionMissing()
    }
    request.dashboardSession = session
    request.apiKey = key // the audit actor (apikey:<name>) and the request log's
    if (request.method === 'POST') checkCsrf(request)
  })
  app.addHook('preClose', async () => live.close())

  const routeConfig = (extra: { page?: boolean; open?: boolean } = {}) => ({ config: { session: true, ...extra }, schema: { hide: true } })
  const sendAsset = (reply: FastifyReply, name: string) => {
    const asset = opts.assets.get(name)
    if (!asset) return reply.callNotFound()
    return reply.type(asset.contentType).send(asset.body)
  }

  app.get(`${PATH}/assets/:file`, routeConfig({ open: true }), async (request: FastifyRequest<{ Params: { file: string } }>, reply) => {
    const file = request.params.file
    return file.endsWith('.html') ? reply.callNotFound() : sendAsset(reply, file)
  })
  app.get(`${PATH}/sign-in`, routeConfig({ open: true }), async (_request, reply) => sendAsset(reply, 'sign-in.html'))
  app.get(PATH, routeConfig({ page: true }), async (_request, reply) => sendAsset(reply, 'overview.html'))
  app.get(
    `${PATH}/devices/:id`,
    { ...routeConfig({ page: true }), schema: { hide: true, params: deviceParams } },
    async (_request, reply) => sendAsset(reply, 'device.html'),
  )

  app.post<{ Body: { key: string } }>(
    `${PATH}/sign-in`,
    {
      ...routeConfig({ open: true }),
      schema: {
        hide: true,
        body: { type: 'object', properties: { key: { type: 'string', maxLength: 200 } }, required: ['key'], additionalProperties: false },
      },
    },
    async (request, reply) => {
      await opts.signIn.attempt(request.ip) // GH_DASHBOARD_SIGN_IN_LIMITED (429) before the key is even looked at
      const key = await opts.apiKeys.verify(request.body.key)
      if (!key.scopes.includes('dashboard')) throw new ApiKeyScopeMissing('dashboard')
      await opts.signIn.succeeded(request.ip)
      await sessions.remove(request.cookies[COOKIE]) // signing in again replaces the browser's session
      const { id } = await sessions.create(key)
      reply.setCookie(COOKIE, id, { path: PATH, httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https' })
      opts.log.info({ actor: `apikey:${key.name}` }, 'dashboard signed in')
      return { name: key.name }
    },
  )
  app.post(`${PATH}/sign-out`, routeConfig(), async (request, reply) => {
    await sessions.remove(request.cookies[COOKIE])
    reply.clearCookie(COOKIE, { path: PATH })
    return { signedOut: true }
  })

  app.get(`${PATH}/api/session`, routeConfig(), async (request) => ({
    name: request.dashboardSession?.keyName,
    csrfToken: request.dashboardSession?.csrfToken,
  }))
  app.get(`${PATH}/api/overview`, routeConfig(), async () => fleet.overview())
  app.get<{ Params: { id: string } }>(
    `${PATH}/api/devices/:id`,
    { ...routeConfig(), schema: { hide: true, params: deviceParams } },
    async (request) => fleet.device(request.params.id),
  )
  app.get(`${PATH}/api/events`, routeConfig(), async (request, reply) => {
    live.checkRoom()
    const session = request.dashboardSession as DashboardSession
    reply.hijack()
    await live.open(reply.raw, () => sessions.isLive(session))
  })

  deviceActions(app, authority, routeConfig())
}

/** Disable, enable, revoke, renew: the authority's own methods (as the CLI and the API call them), audited as the key. */
function deviceActions(app: FastifyInstance, authority: DeviceAuthority, base: { config: object; schema: object }) {
  const schema = (body: object) => ({ ...base, schema: { hide: true, params: deviceParams, body } })
  const noBody = { type: 'object', additionalProperties: false } as const
  type Req<B = unknown> = FastifyRequest<{ Params: { id: string }; Body: B }>

  app.post(`${PATH}/api/devices/:id/disable`, schema(noBody), async (request: Req) => ({
    status: (await authority.disableDevice(request.params.id, actorOf(request))).status,
  }))
  app.post(`${PATH}/api/devices/:id/enable`, schema(noBody), async (request: Req) => ({
    status: (await authority.enableDevice(request.params.id, actorOf(request))).status,
  }))
  app.post(
    `${PATH}/api/devices/:id/revoke`,
    schema({ type: 'object', properties: { reason: crlReasonSchema }, additionalProperties: false }),
    async (request: Req<{ reason?: CrlReason }>) => {
      const { device, revokedSerials } = await authority.revokeDevice(
        request.params.id,
        request.body.reason ?? 'unspecified',
        actorOf(request),
      )
      return { status: device.status, revokedSerials }
    },
  )
  app.post(
    `${PATH}/api/devices/:id/renew`,
    schema({ type: 'object', properties: { csr: { type: 'string', maxLength: 16_384 } }, additionalProperties: false }),
    async (request: Req<{ csr?: string }>) => {
      const csr = request.body.csr?.trim()
      const issued = await authority.renewDevice(request.params.id, { ...(csr && { csr }), via: 'dashboard' }, actorOf(request))
      // a key Gatehouse generated is shown once, here, and never stored
      return {
        serial: issued.serial,
        notAfter: issued.notAfter.toISOString(),
        certificatePem: issued.certificatePem,
        chainPem: issued.chainPem,
        privateKeyPem: issued.privateKey?.pem ?? null,
      }
    },
  )
}
