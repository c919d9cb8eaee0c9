import { describe, expect, it } from 'vitest'
import { API_SCOPES } from '../../../../provisioning/api-keys/scopes.ts'
import { apiHarness, ROUTES } from './api-harness.ts'

async function withDevice(options: Parameters<typeof apiHarness>[0] = {}) {
  const h = await apiHarness(options)
  await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'operator:test')
  // a disabled one, for POST /v1/devices/{id}/enable
  await h.authority.createDevice({ id: 'pump-2', group: 'pumps' }, 'operator:test')
  await h.authority.disableDevice('pump-2', 'operator:test')
  return h
}

describe('API key check', () => {
  it('answers 401 with WWW-Authenticate: Bearer to a request without a key, or with another scheme', async () => {
    const { call } = await withDevice()
    for (const auth of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'ghk_abc']) {
      const res = await call(auth, 'GET', '/v1/devices')
      expect(res.statusCode, String(auth)).toBe(401)
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /)
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(res.json().code).toBe('GH_API_KEY_MISSING')
    }
  })

  it('answers 401 GH_API_KEY_INVALID to a bad, a revoked and an expired key', async () => {
    const { call, apiKeys, clock, keyWith } = await withDevice()
    const good = await keyWith('devices:read')
    const revoked = `Bearer ${(await apiKeys.create({ name: 'old', scopes: ['devices:read'] }, 'op')).token}`
    const expiring = `Bearer ${(await apiKeys.create({ name: 'temp', scopes: ['devices:read'], expiresInMs: 3_600_000 }, 'op')).token}`
    expect((await call(revoked, 'GET', '/v1/devices')).statusCode).toBe(200)
    expect((await call(expiring, 'GET', '/v1/devices')).statusCode).toBe(200)
    await apiKeys.revoke('old', 'op')
    clock.advance('1h')
    for (const auth of [
      revoked,
      expiring,
      `${good.slice(0, -2)}xx`,
      'Bearer ghk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    ]) {
      const res = await call(auth, 'GET', '/v1/devices')
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"')
      expect(res.json()).toMatchObject({ status: 401, code: 'GH_API_KEY_INVALID', type: 'https://gatehouse.dev/errors/GH_API_KEY_INVALID' })
    }
    expect((await call(good, 'GET', '/v1/devices')).statusCode).toBe(200)
  })

  it('refuses a key in the URL query with 400, even on a public endpoint', async () => {
    const { call, keyWith } = await withDevice()
    const token = (await keyWith('devices:read')).slice('Bearer '.length)
    for (const url of [`/v1/devices?access_token=${token}`, `/v1/devices?x=${token}`, `/healthz?token=abc`, `/v1/devices?api_key=abc`]) {
      const res = await call(undefined, 'GET', url)
      expect(res.statusCode, url).toBe(400)
      expect(res.json().code).toBe('GH_API_TOKEN_IN_QUERY')
    }
  })

  it('lets /healthz, /readyz and /openapi.json through without a key', async () => {
    const { call } = await withDevice()
    expect((await call(undefined, 'GET', '/healthz')).json()).toEqual({ status: 'ok', checks: {} })
    expect((await call(undefined, 'GET', '/readyz')).json()).toEqual({ status: 'ok', checks: {} })
    expect((await call(undefined, 'GET', '/openapi.json')).statusCode).toBe(200)
  })

  // one harness per route (building one costs a CA, a SQLite file and two devices): every other scope is
  // refused first (the scope check comes before the handler, so nothing changes), then the route's own
  // scope is let through once
  it.each(ROUTES.map((route) => [`${route.method} ${route.url} needs ${route.scope}`, route] as const))('%s', async (_name, route) => {
    const { call, keyWith } = await withDevice()
    const allowed = await keyWith(route.scope) // k1: the key routes such as /v1/apikeys/k1/rotate act on
    for (const scope of API_SCOPES.filter((s) => s !== route.scope)) {
      const res = await call(await keyWith(scope), route.method, route.url, route.body)
      expect(res.statusCode, `${scope}: ${res.body}`).toBe(403)
      expect(res.json()).toMatchObject({ code: 'GH_API_KEY_SCOPE', status: 403 })
    }
    const res = await call(allowed, route.method, route.url, route.body)
    expect(res.statusCode, res.body).toBe(route.status ?? 200)
  })

  it('limits each key to its burst, then answers 429 with Retry-After until the bucket refills', async () => {
    const { call, keyWith, clock } = await withDevice({ rateLimit: { ratePerSecond: 2, burst: 3 } })
    const a = await keyWith('devices:read')
    const b = await keyWith('devices:read')
    for (let i = 0; i < 3; i++) expect((await call(a, 'GET', '/v1/devices')).statusCode).toBe(200)
    const limited = await call(a, 'GET', '/v1/devices')
    expect(limited.statusCode).toBe(429)
    expect(limited.headers['retry-after']).toBe('1')
    expect(limited.json().code).toBe('GH_API_RATE_LIMITED')
    expect((await call(b, 'GET', '/v1/devices')).statusCode).toBe(200) // per key
    clock.advance('500ms')
    expect((await call(a, 'GET', '/v1/devices')).statusCode).toBe(200)
    expect((await call(a, 'GET', '/v1/devices')).statusCode).toBe(429)
  })
})
