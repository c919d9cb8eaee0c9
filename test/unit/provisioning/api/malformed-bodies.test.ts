import { describe, expect, it } from 'vitest'
import { API_SCOPES } from '../../../../provisioning/api-keys/scopes.ts'
import { apiHarness, ROUTES as EVERY_ROUTE } from './api-harness.ts'

// Malformed JSON at the API (issue 17, "Bad input"): every body route answers a coded 4xx problem and
// stores nothing (no settings revision, no audit record, the device untouched). The prototype keys and
// size limits of settings have their own tests (settings-hardening.test.ts, settings-routes.test.ts).

const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`
const deepArray = (n: number) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`

const BODIES: [string, string, RegExp][] = [
  ['fail/broken-json', '{"rate": ', /^GH_API_BODY_INVALID$/],
  ['fail/object-nested-5000-deep', deepObject(5000), /^GH_(SETTINGS_TOO_LARGE|API_VALIDATION)$/],
  ['fail/array-nested-50000-deep', deepArray(50_000), /^GH_(SETTINGS_TOO_LARGE|API_VALIDATION)$/],
  ['fail/number-beyond-double', '{"rate": 1e400}', /^GH_(SETTINGS_INVALID|API_VALIDATION)$/],
  ['fail/nested-number-beyond-double', '{"a": {"b": [1, -1e999]}}', /^GH_(SETTINGS_INVALID|API_VALIDATION)$/],
  ['fail/integer-beyond-2^53', '{"rate": 9007199254740993}', /^GH_JSON_INTEGER_UNSAFE$/],
  ['fail/a-string', '"rate"', /^GH_(SETTINGS_INVALID|API_VALIDATION)$/],
  ['fail/an-array', '[1, 2]', /^GH_(SETTINGS_INVALID|API_VALIDATION)$/],
  ['fail/a-number', '42', /^GH_(SETTINGS_INVALID|API_VALIDATION)$/],
  ['fail/huge-body', JSON.stringify({ a: 'x'.repeat(2_000_000) }), /^GH_API_BODY_TOO_LARGE$/],
]

const ROUTES: [string, 'PATCH' | 'POST', string, Record<string, string>][] = [
  ['device settings', 'PATCH', '/v1/devices/pump-1/settings', { 'content-type': 'application/merge-patch+json' }],
  ['fleet defaults', 'PATCH', '/v1/settings/defaults', { 'content-type': 'application/json' }],
  ['group settings', 'PATCH', '/v1/groups/pumps/settings', { 'content-type': 'application/json' }],
  ['revoke', 'POST', '/v1/devices/pump-1/revoke', { 'content-type': 'application/json' }],
]

async function harness() {
  const h = await apiHarness({ rateLimit: { ratePerSecond: 1000, burst: 1000 } })
  await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'op')
  return { ...h, auth: await h.keyWith('settings:read', 'settings:write', 'devices:read', 'devices:revoke') }
}

describe('malformed request bodies', () => {
  it.each(ROUTES)('%s: every malformed body gets a coded 4xx and stores nothing', async (_route, method, url, headers) => {
    const h = await harness()
    const audits = (await h.store.listAudit({})).length
    for (const [name, body, code] of BODIES) {
      const res = await h.call(h.auth, method, url, body, headers)
      expect(res.statusCode, `${name}: ${res.body}`).toBeGreaterThanOrEqual(400)
      expect(res.statusCode, `${name}: ${res.body}`).toBeLessThan(500)
      expect(res.json().code, name).toMatch(code)
      expect(res.json().detail, name).toEqual(expect.any(String))
    }
    expect((await h.store.listAudit({})).length).toBe(audits)
    expect((await h.call(h.auth, 'GET', '/v1/devices/pump-1')).json()).toMatchObject({ status: 'active' })
    expect((await h.call(h.auth, 'GET', '/v1/devices/pump-1/settings')).json()).toMatchObject({ version: 1, desired: {} })
    expect((await h.call(h.auth, 'GET', '/v1/settings/defaults')).json()).toMatchObject({ revision: 0 })
  })
})

describe('malformed bodies at every route but GET (the scope matrix of api-harness.ts)', () => {
  // a route that takes no body refuses one too (route-helpers.ts, scoped): revoking an API key with a
  // 5000-deep document, or with a reason it would ignore, was a 200
  const withBody = EVERY_ROUTE.filter((r) => r.method !== 'GET')

  it('lists the routes that change something', () => {
    expect(withBody.length).toBeGreaterThanOrEqual(20)
  })

  it.each(withBody.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s: a coded 4xx for each malformed body, nothing audited',
    async (_name, route) => {
      const h = await apiHarness({ rateLimit: { ratePerSecond: 1000, burst: 1000 } })
      await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'op')
      const auth = await h.keyWith(...API_SCOPES)
      const audits = (await h.store.listAudit({})).length
      for (const [name, body, code] of BODIES) {
        const res = await h.call(auth, route.method, route.url, body)
        expect(res.statusCode, `${name}: ${res.body}`).toBeGreaterThanOrEqual(400)
        expect(res.statusCode, `${name}: ${res.body}`).toBeLessThan(500)
        // the parser's own refusals are the same everywhere; what a route's schema or rules refuse is its own code
        const expected = /^GH_(API_BODY_INVALID|API_BODY_TOO_LARGE|JSON_INTEGER_UNSAFE)/.test(code.source) ? code : /^GH_[A-Z_]+$/
        expect(res.json().code, name).toMatch(expected)
      }
      expect((await h.store.listAudit({})).length).toBe(audits)
    },
  )
})

describe('malformed settings reports (devices/{id}/settings/reported)', () => {
  it.each([
    ['fail/nested-5000-deep', JSON.parse(`{"version": 1, "settings": ${deepObject(5000)}}`)],
    ['fail/number-beyond-double', JSON.parse('{"version": 1, "settings": {"rate": 1e400}}')],
  ])('%s: refused with GH_SETTINGS_INVALID, nothing stored', async (_name, report) => {
    const h = await harness()
    let code: unknown
    try {
      await h.settings.report('pump-1', report)
    } catch (err) {
      code = (err as { code?: string }).code
    }
    expect(code).toBe('GH_SETTINGS_INVALID')
    expect((await h.call(h.auth, 'GET', '/v1/devices/pump-1/settings')).json()).toMatchObject({ reported: null })
  })
})
