import { describe, expect, it } from 'vitest'
import { apiHarness } from './api-harness.ts'

describe('/v1/apps', () => {
  it('lists and shows apps with their scope and certificates; revoke is audited, announces app.revoked and is refused twice', async () => {
    const { call, keyWith, store } = await apiHarness()
    const key = await keyWith('apps:admin')
    const listed = (await call(key, 'GET', '/v1/apps')).json().items
    expect(listed).toMatchObject([
      { name: 'dash', groups: ['pumps'], classes: ['telemetry'], status: 'active', certificates: [{ status: 'active' }] },
    ])
    const before = await store.lastEventSeq()
    const res = await call(key, 'POST', '/v1/apps/dash/revoke')
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ status: 'revoked', certificates: [{ status: 'revoked' }] })
    expect(await store.eventsAfter(before, 10)).toEqual([expect.objectContaining({ type: 'app.revoked', data: { name: 'dash' } })])
    expect(await store.listAudit({ action: 'app.revoked' })).toMatchObject([
      { subject: 'app:dash', actor: expect.stringMatching(/^apikey:/) },
    ])
    expect((await call(key, 'POST', '/v1/apps/dash/revoke')).json()).toMatchObject({ code: 'GH_APP_REVOKED', status: 409 })
    expect((await call(key, 'GET', '/v1/apps/nope')).json()).toMatchObject({ code: 'GH_APP_NOT_FOUND', status: 404 })
    expect((await call(await keyWith('routes:read'), 'GET', '/v1/apps')).statusCode).toBe(403)
  })
})
