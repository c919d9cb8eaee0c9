import { describe, expect, it } from 'vitest'
import { apiHarness } from './api-harness.ts'

/** A harness with an admin key (apikeys:admin + devices:read) named 'admin'. */
async function withAdmin() {
  const h = await apiHarness()
  const admin = `Bearer ${(await h.apiKeys.create({ name: 'admin', scopes: ['apikeys:admin', 'devices:read'] }, 'operator:test')).token}`
  const audit = async (action: string) => (await h.store.listAudit({})).filter((e) => e.action === action)
  /** the keys as stored, but for lastUsedAt (which the calling key's own request sets) */
  const keys = async () => (await h.apiKeys.list()).map(({ lastUsedAt: _, ...k }) => k)
  return { ...h, admin, audit, keys }
}

const bearer = (token: string) => `Bearer ${token}`

describe('/v1/apikeys', () => {
  it('creates a key whose secret is in the answer once, lists keys without secrets, and audits the calling key as actor', async () => {
    const { call, admin, audit } = await withAdmin()
    const created = await call(admin, 'POST', '/v1/apikeys', { name: 'reader', scopes: ['devices:read'], expiresInSeconds: 3600 })
    expect(created.statusCode, created.body).toBe(201)
    expect(created.headers['cache-control']).toBe('no-store')
    const { token, key } = created.json()
    expect(token).toMatch(/^ghk_[0-9a-f]{12}_/)
    expect(key).toMatchObject({
      name: 'reader',
      scopes: ['devices:read'],
      expiresAt: '2026-01-01T01:00:00.000Z',
      previousSecretUntil: null,
    })
    expect((await call(bearer(token), 'GET', '/v1/devices')).statusCode).toBe(200)

    const listed = await call(admin, 'GET', '/v1/apikeys')
    expect(listed.json().items.map((k: { name: string }) => k.name)).toEqual(['admin', 'reader'])
    expect(listed.body).not.toContain('ghk_')
    expect(listed.body).not.toMatch(/secret_?hash|"token"/i)
    expect((await audit('apikey.created')).find((e) => e.subject === 'apikey:reader')).toMatchObject({
      actor: 'apikey:admin',
      subject: 'apikey:reader',
    })
  })

  it('refuses to create, rotate or revoke a key with a scope the calling key lacks, and stores nothing', async () => {
    const { call, apiKeys, audit, keys } = await withAdmin()
    const narrow = bearer((await apiKeys.create({ name: 'narrow', scopes: ['apikeys:admin'] }, 'operator:test')).token)
    await apiKeys.create({ name: 'wide', scopes: ['devices:read', 'devices:revoke'] }, 'operator:test')
    const before = { keys: await keys(), audit: (await audit('apikey.created')).length }
    const refused = [
      await call(narrow, 'POST', '/v1/apikeys', { name: 'escalated', scopes: ['apikeys:admin', 'devices:revoke'] }),
      await call(narrow, 'POST', '/v1/apikeys/wide/rotate', {}),
      await call(narrow, 'POST', '/v1/apikeys/wide/revoke', {}),
    ]
    for (const res of refused) {
      expect(res.statusCode, res.body).toBe(403)
      expect(res.json()).toMatchObject({ code: 'GH_API_KEY_SCOPE_ESCALATION' })
    }
    expect(await keys()).toEqual(before.keys)
    expect(await audit('apikey.created')).toHaveLength(before.audit)
    expect(await audit('apikey.rotated')).toEqual([])
    expect(await audit('apikey.revoked')).toEqual([])
    // within its own scopes it may
    expect((await call(narrow, 'POST', '/v1/apikeys', { name: 'peer', scopes: ['apikeys:admin'] })).statusCode).toBe(201)
  })

  it('rotates a secret: the old and the new one work during the overlap, the old one is refused after it', async () => {
    const { call, admin, apiKeys, clock, audit } = await withAdmin()
    const old = (await apiKeys.create({ name: 'app', scopes: ['devices:read'] }, 'operator:test')).token
    const res = await call(admin, 'POST', '/v1/apikeys/app/rotate', { overlapSeconds: 600 })
    expect(res.statusCode, res.body).toBe(200)
    const { token, key } = res.json()
    expect(token).not.toBe(old)
    expect(token.slice(0, 17)).toBe(old.slice(0, 17)) // same id: ghk_<id>_
    expect(key).toMatchObject({ name: 'app', previousSecretUntil: '2026-01-01T00:10:00.000Z' })
    expect(await audit('apikey.rotated')).toEqual([
      expect.objectContaining({ actor: 'apikey:admin', subject: 'apikey:app', details: expect.objectContaining({ overlapSeconds: 600 }) }),
    ])
    expect((await call(bearer(old), 'GET', '/v1/devices')).statusCode).toBe(200)
    expect((await call(bearer(token), 'GET', '/v1/devices')).statusCode).toBe(200)
    clock.advance('599s')
    expect((await call(bearer(old), 'GET', '/v1/devices')).statusCode).toBe(200)
    clock.advance('1s')
    const after = await call(bearer(old), 'GET', '/v1/devices')
    expect(after.statusCode).toBe(401)
    expect(after.json().code).toBe('GH_API_KEY_INVALID')
    expect((await call(bearer(token), 'GET', '/v1/devices')).statusCode).toBe(200)
  })

  it('overlaps a day by default; a second rotation drops the first old secret; revoking refuses every secret of the key', async () => {
    const { call, admin, apiKeys } = await withAdmin()
    const first = (await apiKeys.create({ name: 'app', scopes: ['devices:read'] }, 'operator:test')).token
    const rotated = await call(admin, 'POST', '/v1/apikeys/app/rotate', {})
    expect(rotated.statusCode, rotated.body).toBe(200)
    const second = rotated.json()
    expect(second.key.previousSecretUntil).toBe('2026-01-02T00:00:00.000Z')
    const third = (await call(admin, 'POST', '/v1/apikeys/app/rotate', { overlapSeconds: 60 })).json()
    expect((await call(bearer(first), 'GET', '/v1/devices')).statusCode).toBe(401)
    expect((await call(bearer(second.token), 'GET', '/v1/devices')).statusCode).toBe(200)
    expect((await call(admin, 'POST', '/v1/apikeys/app/revoke', {})).json()).toMatchObject({ name: 'app', revokedAt: expect.any(String) })
    for (const t of [second.token, third.token]) expect((await call(bearer(t), 'GET', '/v1/devices')).statusCode).toBe(401)
    expect((await call(admin, 'POST', '/v1/apikeys/app/rotate', {})).json().code).toBe('GH_API_KEY_REVOKED')
  })

  it.each([
    ['fail/overlap beyond 30 days', 'POST', '/v1/apikeys/app/rotate', { overlapSeconds: 2_592_001 }, 400, 'GH_API_VALIDATION'],
    ['fail/negative overlap', 'POST', '/v1/apikeys/app/rotate', { overlapSeconds: -1 }, 400, 'GH_API_VALIDATION'],
    ['fail/unknown field', 'POST', '/v1/apikeys/app/rotate', { overlap: 5 }, 400, 'GH_API_VALIDATION'],
    ['fail/rotate an unknown key', 'POST', '/v1/apikeys/nope/rotate', {}, 404, 'GH_API_KEY_NOT_FOUND'],
    ['fail/unknown scope', 'POST', '/v1/apikeys', { name: 'x', scopes: ['root'] }, 400, 'GH_API_VALIDATION'],
    ['fail/no scopes', 'POST', '/v1/apikeys', { name: 'x', scopes: [] }, 400, 'GH_API_VALIDATION'],
    ['fail/bad name', 'POST', '/v1/apikeys', { name: 'a b', scopes: ['devices:read'] }, 400, 'GH_API_VALIDATION'],
    ['fail/name taken', 'POST', '/v1/apikeys', { name: 'app', scopes: ['devices:read'] }, 409, 'GH_API_KEY_EXISTS'],
    [
      'fail/expiry in the past',
      'POST',
      '/v1/apikeys',
      { name: 'x', scopes: ['devices:read'], expiresAt: '2025-01-01T00:00:00Z' },
      400,
      'GH_API_KEY_EXPIRY_INVALID',
    ],
    ['fail/revoke an unknown key', 'POST', '/v1/apikeys/nope/revoke', {}, 404, 'GH_API_KEY_NOT_FOUND'],
  ])('%s', async (_name, method, url, body, status, code) => {
    const { call, admin, apiKeys, store, keys } = await withAdmin()
    await apiKeys.create({ name: 'app', scopes: ['devices:read'] }, 'operator:test')
    const before = await keys()
    const auditCount = (await store.listAudit({})).length
    const res = await call(admin, method, url, body)
    expect(res.statusCode, res.body).toBe(status)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(res.json().code).toBe(code)
    expect(await keys()).toEqual(before)
    expect(await store.listAudit({})).toHaveLength(auditCount)
  })
})
