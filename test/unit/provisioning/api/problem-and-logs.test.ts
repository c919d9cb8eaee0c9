import { describe, expect, it } from 'vitest'
import { parseIfMatch } from '../../../../provisioning/api/route-helpers.ts'
import { apiHarness, ROUTES } from './api-harness.ts'

describe('errors as problem details', () => {
  it('answers an unknown route with a 404 problem', async () => {
    const { call } = await apiHarness()
    const res = await call(undefined, 'GET', '/v1/nothing-here')
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8')
    expect(res.json()).toEqual({
      type: 'https://gatehouse.dev/errors/GH_API_NOT_FOUND',
      title: 'Not Found',
      status: 404,
      detail: expect.any(String),
      code: 'GH_API_NOT_FOUND',
      requestId: res.headers['x-request-id'],
    })
  })

  it('turns an unexpected failure into a 500 that names the request id, logs the whole error and leaks nothing', async () => {
    const boom = Object.assign(new Error('database file /var/lib/gatehouse/secret-path is corrupt'), { code: 'SQLITE_CORRUPT' })
    const presence = {
      isConnected: () => {
        throw boom
      },
      lastSeen: async () => null,
    }
    const h = await apiHarness({}, { presence })
    await h.authority.createDevice({ id: 'd1' }, 'op')
    const res = await h.call(await h.keyWith('devices:read'), 'GET', '/v1/devices')
    expect(res.statusCode).toBe(500)
    const problem = res.json()
    expect(problem).toMatchObject({ status: 500, code: 'GH_API_INTERNAL', title: 'Internal Server Error' })
    expect(problem.detail).toBe(`internal error, see the Gatehouse log (requestId ${problem.requestId})`)
    expect(res.body).not.toMatch(/secret-path|SQLITE|at .*\.ts/)
    const logged = h
      .logText()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'request failed')
    expect(logged).toMatchObject({
      level: 50,
      module: 'api',
      reqId: problem.requestId,
      err: { message: boom.message, stack: expect.any(String) },
    })
  })
})

describe('logging', () => {
  it('never logs an API key, whether in the header, a bad header or the URL query', async () => {
    const h = await apiHarness()
    await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'op')
    const auth = await h.keyWith('devices:read', 'settings:read', 'settings:write', 'devices:revoke')
    const token = auth.slice('Bearer '.length)
    for (const route of ROUTES) await h.call(auth, route.method, route.url, route.body)
    await h.call(`${auth}x`, 'GET', '/v1/devices')
    await h.call(undefined, 'GET', `/v1/devices?access_token=${token}`)
    await h.call(auth, 'GET', '/v1/nothing-here')
    await h.apiKeys.revoke('k1', 'op')
    await h.call(auth, 'GET', '/v1/devices')
    const text = h.logText()
    expect(text).toContain('"module":"api"')
    expect(text).not.toContain(token)
    // the secret part alone (ghk_<id>_<secret>; the secret is base64url, so it may hold '_' itself)
    expect(text).not.toContain(token.slice('ghk_'.length + 12 + 1))
    expect(text.toLowerCase()).not.toContain('authorization')
  })
})

describe('parseIfMatch', () => {
  it.each([
    ['ok/quoted', '"3"', 3],
    ['ok/bare', '3', 3],
    ['ok/star', '*', undefined],
    ['ok/absent', undefined, undefined],
    ['ok/spaces', ' "12" ', 12],
  ])('%s', (_name, header, expected) => {
    expect(parseIfMatch(header)).toBe(expected)
  })

  it.each([
    ['fail/weak', 'W/"3"'],
    ['fail/negative', '-1'],
    ['fail/list', '"1","2"'],
    ['fail/empty', ''],
  ])('%s', (_name, header) => {
    expect(() => parseIfMatch(header)).toThrow(
      expect.objectContaining({ code: 'GH_API_VALIDATION', fields: [expect.objectContaining({ field: 'headers.if-match' })] }),
    )
  })
})

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3 document with every route, its scope, the bearer scheme and the problem schema', async () => {
    const { call } = await apiHarness()
    const res = await call(undefined, 'GET', '/openapi.json')
    expect(res.statusCode).toBe(200)
    const doc = res.json()
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/)
    expect(doc.info).toMatchObject({ title: 'Gatehouse API', version: expect.any(String) })
    expect(doc.components.securitySchemes.apiKey).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }))
    expect(doc.security).toEqual([{ apiKey: [] }])
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['Problem', 'DeviceSettingsView', 'LayerView', 'DeviceSummary', 'DeviceDetails']),
    )
    const operations = Object.entries(
      doc.paths as Record<string, Record<string, { 'x-gatehouse-scope'?: string; responses: object }>>,
    ).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        path,
        method: method.toUpperCase(),
        scope: op['x-gatehouse-scope'],
        responses: Object.keys(op.responses),
      })),
    )
    // every authenticated operation is in the scope matrix of api-key-auth.test.ts, and the reverse
    // the public routes: the probes and the CRLs for relying parties (no key, no scope)
    const probes = ['/healthz', '/readyz', '/crl/{file}']
    expect(
      operations
        .filter((o) => !probes.includes(o.path))
        .map((o) => `${o.method} ${o.path} ${o.scope}`)
        .sort(),
    ).toEqual(ROUTES.map((r) => `${r.method} ${r.path} ${r.scope}`).sort())
    for (const o of operations.filter((o) => !probes.includes(o.path))) {
      const status = ROUTES.find((r) => r.method === o.method && r.path === o.path)?.status ?? 200
      expect(o.responses).toEqual(expect.arrayContaining([String(status), '4XX', '5XX']))
    }
    for (const path of probes) expect(doc.paths[path].get.security).toEqual([])
    expect(doc.paths['/v1/devices/{id}/settings'].patch.requestBody.content).toHaveProperty(['application/merge-patch+json'])
    expect(doc.paths['/v1/devices/{id}'].patch.requestBody.content).toHaveProperty(['application/merge-patch+json'])
  })
})
