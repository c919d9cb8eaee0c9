import { describe, expect, it } from 'vitest'
import { apiHarness, ROUTES } from './api-harness.ts'

async function withSettings() {
  const h = await apiHarness()
  await h.authority.createDevice({ id: 'pump-1', group: 'pumps' }, 'op')
  const auth = await h.keyWith(
    'settings:read',
    'settings:write',
    'devices:read',
    'devices:revoke',
    'insights:read',
    'checks:read',
    'metrics:read',
    'apikeys:admin',
    'routes:read',
    'telemetry:read',
    'apps:admin',
  )
  return { ...h, auth }
}

const MERGE = { 'content-type': 'application/merge-patch+json' }

describe('device settings', () => {
  it('reads the effective settings with ETag "<version>", and a merge patch answers the new view and ETag', async () => {
    const { call, auth, store } = await withSettings()
    await call(auth, 'PATCH', '/v1/settings/defaults', { rate: 10, mode: 'eco' })
    const before = await call(auth, 'GET', '/v1/devices/pump-1/settings')
    expect(before.statusCode).toBe(200)
    expect(before.headers.etag).toBe('"1"')
    expect(before.json()).toMatchObject({
      deviceId: 'pump-1',
      version: 1,
      desired: { rate: 10, mode: 'eco' },
      reported: null,
      inSync: false,
    })
    const res = await call(auth, 'PATCH', '/v1/devices/pump-1/settings', '{"rate": 20, "mode": null}', { ...MERGE, 'if-match': '"1"' })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.headers.etag).toBe('"2"')
    expect(res.json()).toMatchObject({ version: 2, desired: { rate: 20, mode: 'eco' } })
    expect((await store.listAudit({ action: 'settings.changed' }))[0]).toMatchObject({ actor: 'apikey:k1', subject: 'pump-1' })
  })

  it('lets exactly one of two PATCHes with the same If-Match win; the other gets 412 and changes nothing', async () => {
    const { call, auth } = await withSettings()
    const [a, b] = await Promise.all([
      call(auth, 'PATCH', '/v1/devices/pump-1/settings', { who: 'a' }, { 'if-match': '"1"' }),
      call(auth, 'PATCH', '/v1/devices/pump-1/settings', { who: 'b' }, { 'if-match': '1' }),
    ])
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 412])
    const loser = a.statusCode === 412 ? a : b
    expect(loser.json()).toMatchObject({ code: 'GH_SETTINGS_VERSION_MISMATCH', status: 412 })
    const now = (await call(auth, 'GET', '/v1/devices/pump-1/settings')).json()
    expect(now.version).toBe(2)
    expect(now.desired.who).toBe(a.statusCode === 200 ? 'a' : 'b')
  })

  it.each([
    ['fail/weak', 'W/"1"'],
    ['fail/list', '"1", "2"'],
    ['fail/text', 'latest'],
  ])('%s If-Match is a 400 naming the header', async (_name, ifMatch) => {
    const { call, auth } = await withSettings()
    const res = await call(auth, 'PATCH', '/v1/devices/pump-1/settings', { a: 1 }, { 'if-match': ifMatch })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'GH_API_VALIDATION', errors: [{ field: 'headers.if-match', message: expect.any(String) }] })
  })

  it('refuses a body that is not JSON with 400, and changes nothing', async () => {
    const { call, auth, store } = await withSettings()
    const audit = (await store.listAudit()).length
    for (const body of ['{"rate": 1', '', 'rate=1']) {
      const res = await call(auth, 'PATCH', '/v1/devices/pump-1/settings', body, MERGE)
      expect(res.statusCode, body).toBe(400)
      expect(res.json().code).toBe('GH_API_BODY_INVALID')
      expect(res.body).not.toContain('rate')
    }
    expect((await call(auth, 'GET', '/v1/devices/pump-1/settings')).json()).toMatchObject({ version: 1, desired: {} })
    expect(await store.listAudit()).toHaveLength(audit)
  })

  it('refuses a body over the limit with 413, and changes nothing', async () => {
    const { call, auth, store } = await withSettings()
    const audit = (await store.listAudit()).length
    const res = await call(auth, 'PATCH', '/v1/settings/defaults', { blob: 'x'.repeat(300 * 1024) })
    expect(res.statusCode).toBe(413)
    expect(res.json().code).toBe('GH_API_BODY_TOO_LARGE')
    expect((await call(auth, 'GET', '/v1/settings/defaults')).json()).toMatchObject({ revision: 0, document: {} })
    expect(await store.listAudit()).toHaveLength(audit)
  })

  it('refuses other media types with 415, and merge-patch+json outside the PATCH endpoints', async () => {
    const { call, auth } = await withSettings()
    const text = await call(auth, 'PATCH', '/v1/devices/pump-1/settings', '{"a":1}', { 'content-type': 'text/plain' })
    expect(text.statusCode).toBe(415)
    expect(text.json().code).toBe('GH_API_MEDIA_TYPE')
    const schema = await call(auth, 'PUT', '/v1/groups/pumps/settings/schema', '{"type":"object"}', MERGE)
    expect(schema.statusCode).toBe(415)
  })

  it('refuses a patch that is not an object naming the body', async () => {
    const { call, auth } = await withSettings()
    const res = await call(auth, 'PATCH', '/v1/devices/pump-1/settings', [1, 2])
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'GH_API_VALIDATION', errors: [{ field: 'body' }] })
  })
})

describe('layers and schemas', () => {
  it('patches the fleet defaults and a group with If-Match = revision, and shows what devices get', async () => {
    const { call, auth } = await withSettings()
    const fleet = await call(auth, 'PATCH', '/v1/settings/defaults', { rate: 10 }, { 'if-match': '"0"' })
    expect(fleet.statusCode, fleet.body).toBe(200)
    expect(fleet.headers.etag).toBe('"1"')
    expect(fleet.json()).toMatchObject({ scope: 'fleet', document: { rate: 10 }, revision: 1, updatedBy: 'apikey:k1' })
    expect((await call(auth, 'PATCH', '/v1/settings/defaults', { rate: 11 }, { 'if-match': '"0"' })).statusCode).toBe(412)
    const group = await call(auth, 'PATCH', '/v1/groups/pumps/settings', { rate: 30 })
    expect(group.json()).toMatchObject({ scope: 'group:pumps', revision: 1, devicesChanged: expect.any(Number) })
    const got = await call(auth, 'GET', '/v1/groups/pumps/settings')
    expect(got.headers.etag).toBe('"1"')
    expect((await call(auth, 'GET', '/v1/devices/pump-1/settings')).json().desired).toEqual({ rate: 30 })
  })

  it('stores a group JSON Schema, enforces it with 422, and reads it back (null when there is none)', async () => {
    const { call, auth } = await withSettings()
    expect((await call(auth, 'GET', '/v1/groups/pumps/settings/schema')).json()).toEqual({ group: 'pumps', schema: null })
    const schema = { type: 'object', properties: { rate: { type: 'integer', maximum: 50 } } }
    const put = await call(auth, 'PUT', '/v1/groups/pumps/settings/schema', schema)
    expect(put.statusCode).toBe(200)
    expect((await call(auth, 'GET', '/v1/groups/pumps/settings/schema')).json()).toEqual({ group: 'pumps', schema })
    const bad = await call(auth, 'PATCH', '/v1/devices/pump-1/settings', { rate: 99 })
    expect(bad.statusCode).toBe(422)
    expect(bad.json().code).toBe('GH_SETTINGS_SCHEMA')
    expect((await call(auth, 'GET', '/v1/devices/pump-1/settings')).json().version).toBe(1)
    const notSchema = await call(auth, 'PUT', '/v1/groups/pumps/settings/schema', { type: 'no-such-type' })
    expect(notSchema.statusCode).toBe(400)
    expect(notSchema.json().code).toBe('GH_SETTINGS_INVALID')
  })

  it('names the group parameter of an invalid group', async () => {
    const { call, auth } = await withSettings()
    const res = await call(auth, 'GET', '/v1/groups/a%20b/settings')
    expect(res.json()).toMatchObject({ code: 'GH_API_VALIDATION', errors: [{ field: 'params.group' }] })
  })
})

describe('secret settings', () => {
  it('never appear in any API response, whoever set or reported them', async () => {
    const { call, auth, settings, logText } = await withSettings()
    const secrets = ['fleet-pw-1', 'group-token-2', 'wifi-pw-3', 'reported-pw-4', 'nested-pw-5']
    const bodies: string[] = []
    const keep = async (p: ReturnType<typeof call>) => {
      const res = await p
      expect(res.statusCode, res.body).toBe(200)
      bodies.push(res.body)
      return res
    }
    await keep(call(auth, 'PATCH', '/v1/settings/defaults', { mqtt_secret: secrets[0] }))
    await keep(call(auth, 'PATCH', '/v1/groups/pumps/settings', { apiSecret: secrets[1] }))
    await keep(call(auth, 'PATCH', '/v1/devices/pump-1/settings', { wifi_secret: secrets[2], net: { vpnSecret: secrets[4] } }))
    await settings.report('pump-1', { version: 1, settings: { wifi_secret: secrets[3] } })
    for (const route of ROUTES.filter((r) => r.method === 'GET')) await keep(call(auth, 'GET', route.url))
    const view = (await keep(call(auth, 'GET', '/v1/devices/pump-1/settings'))).json()
    await keep(call(auth, 'POST', '/v1/devices/pump-1/revoke'))
    expect(view.desired).toMatchObject({
      mqtt_secret: '[secret]',
      apiSecret: '[secret]',
      wifi_secret: '[secret]',
      net: { vpnSecret: '[secret]' },
    })
    expect(view.reported.settings).toEqual({ wifi_secret: '[secret]' })
    for (const secret of secrets) {
      for (const body of bodies) expect(body).not.toContain(secret)
      expect(logText()).not.toContain(secret)
    }
  })

  it('a planted {"$enc": ...} report is refused, and a stored secret that does not decrypt reads [secret]: GET /v1/devices and the device settings answer 200', async () => {
    const { call, auth, settings, store } = await withSettings()
    await expect(settings.report('pump-1', { version: 1, settings: { wifi_secret: { $enc: 'v1:AAAA' } } })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_INVALID' }),
    )
    // what an older Gatehouse stored from such a report
    await settings.deliverable('pump-1') // writes its version row
    const record = (await store.settings.getDeviceSettings('pump-1'))!
    await store.settings.putDeviceSettings({
      ...record,
      reported: { wifi_secret: { $enc: 'v1:AAAA' } },
      reportedVersion: 1,
      reportedAt: new Date(),
    })
    const list = await call(auth, 'GET', '/v1/devices')
    expect(list.statusCode, list.body).toBe(200)
    const one = await call(auth, 'GET', '/v1/devices/pump-1/settings')
    expect(one.statusCode, one.body).toBe(200)
    expect(one.json().reported.settings).toEqual({ wifi_secret: '[secret]' })
  })

  it.each([
    ['/v1/settings/defaults', '{"__proto__": {"polluted": 1}}'],
    ['/v1/groups/pumps/settings', '{"a": {"constructor": {"prototype": {"polluted": 1}}}}'],
    ['/v1/devices/pump-1/settings', '{"a": {"prototype": 1}}'],
  ])('PATCH %s with prototype keys %s: 400 with a code, nothing changed', async (url, body) => {
    const { call, auth, store } = await withSettings()
    for (const type of ['application/json', MERGE['content-type']]) {
      const res = await call(auth, 'PATCH', url, body, { 'content-type': type })
      expect(res.statusCode, res.body).toBe(400)
      expect(res.json().code).toMatch(/^GH_(SETTINGS_INVALID|API_BODY_INVALID)$/)
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(await store.listAudit({ action: 'settings.changed' })).toEqual([])
  })
})
