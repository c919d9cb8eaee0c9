import { describe, expect, it } from 'vitest'
import { apiHarness } from './api-harness.ts'

// Integers beyond ±(2^53 - 1) in an API body (issue 17): JSON.parse would round 9007199254740993 to
// 9007199254740992 and a device would get another number than the operator sent, so every JSON body
// is refused with GH_JSON_INTEGER_UNSAFE naming the field, and nothing is stored.
describe('integers JSON cannot carry exactly, at the API', () => {
  it('settings PATCHes (merge-patch and JSON) and a group schema are refused with the field named; the safe maximum is stored exactly', async () => {
    const h = await apiHarness()
    await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'op')
    const auth = await h.keyWith('settings:read', 'settings:write')
    const audits = (await h.store.listAudit({})).length
    const merge = { 'content-type': 'application/merge-patch+json' }
    const json = { 'content-type': 'application/json' }
    for (const [method, url, headers] of [
      ['PATCH', '/v1/devices/pump-1/settings', merge],
      ['PATCH', '/v1/groups/pumps/settings', merge],
      ['PATCH', '/v1/settings/defaults', json],
      ['PUT', '/v1/groups/pumps/settings/schema', json],
    ] as const) {
      const res = await h.call(auth, method, url, '{"pump": {"limits": [1, 9007199254740993]}}', headers)
      expect(res.statusCode, `${method} ${url}`).toBe(400)
      expect(res.json(), `${method} ${url}`).toMatchObject({ code: 'GH_JSON_INTEGER_UNSAFE' })
      expect(res.json().detail).toContain('9007199254740993 at body.pump.limits.1')
      expect(res.json().detail).toContain('read as 9007199254740992')
    }
    expect((await h.store.listAudit({})).length).toBe(audits)
    expect((await h.call(auth, 'GET', '/v1/devices/pump-1/settings')).json()).toMatchObject({ version: 1, desired: {} })
    expect((await h.call(auth, 'GET', '/v1/groups/pumps/settings/schema')).json()).toMatchObject({ schema: null })

    const ok = await h.call(auth, 'PATCH', '/v1/devices/pump-1/settings', '{"max": 9007199254740991, "min": -9007199254740991}', merge)
    expect(ok.statusCode, ok.body).toBe(200)
    expect(ok.body).toContain('9007199254740991')
    expect((await h.call(auth, 'GET', '/v1/devices/pump-1/settings')).json().desired).toEqual({
      max: 9007199254740991,
      min: -9007199254740991,
    })
  })

  it('other JSON bodies too (a device PATCH): the one JSON body parser refuses them', async () => {
    const h = await apiHarness()
    await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'op')
    const auth = await h.keyWith('devices:read', 'devices:write')
    const res = await h.call(auth, 'PATCH', '/v1/devices/pump-1', '{"labels": {"batch": 18446744073709551615}}', {
      'content-type': 'application/merge-patch+json',
    })
    expect(res.json()).toMatchObject({ code: 'GH_JSON_INTEGER_UNSAFE', status: 400 })
    expect(res.json().detail).toContain('body.labels.batch')
  })
})
