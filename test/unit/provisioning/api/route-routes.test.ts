import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../../certs/index.ts'
import { createRouteService } from '../../../../provisioning/routes/route-service.ts'
import { createSettingsCipher } from '../../../../provisioning/settings/secrets.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { apiHarness } from './api-harness.ts'

const write = 'routes:write'

describe('/v1/routes', () => {
  it('creates a route with its secret once, lists it without the secret, audits it and announces route.changed', async () => {
    const { call, keyWith, store } = await apiHarness()
    const key = await keyWith('routes:write', 'routes:read')
    const before = await store.lastEventSeq()
    const res = await call(key, 'POST', '/v1/routes', { url: 'https://ingest.example.com/in', group: 'pumps', batchSize: 10, redact: true })
    expect(res.statusCode, res.body).toBe(201)
    const created = res.json()
    expect(created).toMatchObject({
      url: 'https://ingest.example.com/in',
      group: 'pumps',
      batchSize: 10,
      batchMs: 1000,
      queueMax: 1000,
      redact: true,
      consent: false,
    })
    expect(created.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const listed = (await call(key, 'GET', '/v1/routes')).json().items
    expect(listed.find((r: { id: string }) => r.id === created.id)).toEqual(expect.not.objectContaining({ secret: expect.anything() }))
    expect(JSON.stringify(listed)).not.toContain(created.secret)
    expect(await store.eventsAfter(before, 10)).toEqual([expect.objectContaining({ type: 'route.changed', data: { routeId: created.id } })])
    const audit = (await store.listAudit({ action: 'route.created' })).find((a) => a.subject === created.id)
    expect(audit?.actor).toMatch(/^apikey:/)
    expect(JSON.stringify(audit)).not.toContain(created.secret)
  })

  it.each([
    ['ftp://ingest.example.com/x', 'GH_ROUTE_INVALID'],
    ['not a url', 'GH_ROUTE_INVALID'],
    ['https://user:pw@ingest.example.com/x', 'GH_ROUTE_INVALID'],
    ['http://127.0.0.1:8080/x', 'GH_ROUTE_TARGET_REFUSED'],
    ['http://localhost/x', 'GH_ROUTE_TARGET_REFUSED'],
    ['http://169.254.169.254/latest/meta-data', 'GH_ROUTE_TARGET_REFUSED'],
    ['http://10.1.2.3/x', 'GH_ROUTE_TARGET_REFUSED'],
    ['http://[::1]/x', 'GH_ROUTE_TARGET_REFUSED'],
    ['http://[::ffff:192.168.1.1]/x', 'GH_ROUTE_TARGET_REFUSED'],
    ['http://[fd00::1]/x', 'GH_ROUTE_TARGET_REFUSED'],
  ])('refuses %s with %s and stores nothing', async (url, code) => {
    const { call, keyWith, store } = await apiHarness()
    const before = await store.lastEventSeq()
    const count = await store.routes.count()
    const res = await call(await keyWith(write), 'POST', '/v1/routes', { url })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code, status: 400 })
    expect(await store.routes.count()).toBe(count)
    expect(await store.eventsAfter(before, 10)).toEqual([])
  })

  it('refuses a body out of range with GH_API_VALIDATION and stores nothing', async () => {
    const { call, keyWith, store } = await apiHarness()
    const count = await store.routes.count()
    for (const body of [
      { url: 'https://a.example/x', batchSize: 0 },
      { url: 'https://a.example/x', queueMax: 1e9 },
      { url: 'https://a.example/x', extra: 1 },
    ]) {
      const res = await call(await keyWith(write), 'POST', '/v1/routes', body)
      expect(res.statusCode).toBe(400)
      expect(res.json().code).toBe('GH_API_VALIDATION')
    }
    expect(await store.routes.count()).toBe(count)
  })

  it('deletes a route (audited), then answers 404 GH_ROUTE_NOT_FOUND for it', async () => {
    const { call, keyWith, store } = await apiHarness()
    const key = await keyWith('routes:write', 'routes:read')
    const { id } = (await call(key, 'POST', '/v1/routes', { url: 'https://ingest.example.com/in' })).json()
    expect((await call(key, 'DELETE', `/v1/routes/${id}`)).statusCode).toBe(200)
    expect((await store.listAudit({ action: 'route.deleted' })).map((a) => a.subject)).toContain(id)
    expect((await call(key, 'GET', `/v1/routes/${id}`)).json()).toMatchObject({ code: 'GH_ROUTE_NOT_FOUND', status: 404 })
    expect((await call(key, 'DELETE', `/v1/routes/${id}`)).statusCode).toBe(404)
  })

  it('tests a route by sending one sample batch through the tester, and shows the answer', async () => {
    const { call, keyWith, tested } = await apiHarness()
    const key = await keyWith('routes:write')
    const { id } = (await call(key, 'POST', '/v1/routes', { url: 'https://ingest.example.com/in' })).json()
    const res = await call(key, 'POST', `/v1/routes/${id}/test`)
    expect(res.json()).toEqual({ id, url: 'https://ingest.example.com/in', status: 200, body: 'ok' })
    expect(tested.at(-1)).toMatchObject({
      url: 'https://ingest.example.com/in',
      messages: [expect.objectContaining({ data: { test: true } })],
    })
  })
})

describe('the route service', () => {
  const service = (maxRoutes: number) => {
    const store = new SqliteRegistryStore(':memory:')
    return {
      store,
      routes: createRouteService(
        {
          store,
          routes: store.routes,
          cipher: createSettingsCipher(new Uint8Array(32).fill(7), cryptoRandom),
          clock: fixedClock(),
          random: cryptoRandom,
          log: pino({ level: 'silent' }),
        },
        { maxRoutes, allowPrivateTargets: false },
      ),
    }
  }

  it('bounds the number of routes with GH_ROUTE_LIMIT, storing nothing over it', async () => {
    const { store, routes } = service(2)
    await routes.create({ url: 'https://a.example/1' }, 'operator:test')
    await routes.create({ url: 'https://a.example/2' }, 'operator:test')
    await expect(routes.create({ url: 'https://a.example/3' }, 'operator:test')).rejects.toThrow(
      expect.objectContaining({ code: 'GH_ROUTE_LIMIT' }),
    )
    expect(await store.routes.count()).toBe(2)
    expect(await store.listAudit({ action: 'route.created' })).toHaveLength(2)
  })

  it('wraps an endpoint that did not take the sample in GH_ROUTE_TEST_FAILED with what happened', async () => {
    const { routes } = service(1)
    const { id } = await routes.create({ url: 'https://a.example/1' }, 'operator:test')
    await expect(routes.test(id, 'operator:test', async () => Promise.reject(new Error('HTTP 503')))).rejects.toMatchObject({
      code: 'GH_ROUTE_TEST_FAILED',
      message: expect.stringContaining('HTTP 503'),
    })
  })
})
