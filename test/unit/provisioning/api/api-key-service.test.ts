import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../../certs/index.ts'
import { createApiKeyService } from '../../../../provisioning/api-keys/api-key-service.ts'
import { parseApiKey } from '../../../../provisioning/api-keys/api-key-token.ts'
import { parseExpiry } from '../../../../provisioning/api-keys/expiry.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { capturedLog } from './api-harness.ts'

function setup() {
  const clock = fixedClock('2026-01-01T00:00:00Z')
  const store = new SqliteRegistryStore(':memory:')
  const { log, text } = capturedLog()
  const service = createApiKeyService({ store, apiKeys: store.apiKeys, clock, random: cryptoRandom, log })
  return { clock, store, service, logText: text }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

describe('ApiKeyService', () => {
  it('creates a ghk_<id>_<secret> key, stores only the SHA-256 of its secret, and audits without the key', async () => {
    const { service, store, logText } = setup()
    const { token, key } = await service.create(
      { name: 'dashboard', scopes: ['settings:write', 'devices:read', 'devices:read'] },
      'operator:ann',
    )
    expect(token).toMatch(/^ghk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
    const parsed = parseApiKey(token)!
    expect(Buffer.from(parsed.secret, 'base64url')).toHaveLength(32)
    expect(key).toMatchObject({
      id: parsed.id,
      name: 'dashboard',
      scopes: ['devices:read', 'settings:write'],
      expiresAt: null,
      revokedAt: null,
    })
    expect(key).not.toHaveProperty('secretHash')
    const stored = (await store.apiKeys.getByName('dashboard'))!
    expect(stored.secretHash).toBe(sha256(parsed.secret))
    expect(JSON.stringify(stored)).not.toContain(parsed.secret)
    const audit = await store.listAudit()
    expect(audit).toEqual([expect.objectContaining({ actor: 'operator:ann', action: 'apikey.created', subject: 'apikey:dashboard' })])
    expect(JSON.stringify(audit)).not.toContain(parsed.secret)
    expect(logText()).not.toContain(parsed.secret)
  })

  it('verifies a live key and gives one error for malformed, unknown, wrong, revoked and expired keys', async () => {
    const { service, clock } = setup()
    const live = (await service.create({ name: 'a', scopes: ['devices:read'] }, 'op')).token
    const revoked = (await service.create({ name: 'b', scopes: ['devices:read'] }, 'op')).token
    const expiring = (await service.create({ name: 'c', scopes: ['devices:read'], expiresInMs: 3_600_000 }, 'op')).token
    await service.revoke('b', 'op')
    expect(await service.verify(live)).toMatchObject({ name: 'a' })
    expect(await service.verify(expiring)).toMatchObject({ name: 'c' })
    clock.advance('1h')
    const { id } = parseApiKey(live)!
    const wrongSecret = `ghk_${id}_${'A'.repeat(43)}`
    const unknownId = live.replace(id, id === '000000000000' ? '111111111111' : '000000000000')
    for (const bad of ['', 'nonsense', 'ghk_', live.slice(0, -1), `${live}x`, wrongSecret, unknownId, revoked, expiring]) {
      await expect(service.verify(bad), bad).rejects.toThrow(expect.objectContaining({ code: 'GH_API_KEY_INVALID', statusCode: 401 }))
    }
    expect((await service.verify(live)).name).toBe('a')
  })

  it('records last use at most once a minute per key', async () => {
    const { service, store, clock } = setup()
    const { token, key } = await service.create({ name: 'a', scopes: ['devices:read'] }, 'op')
    const lastUsed = async () => (await store.apiKeys.getById(key.id))?.lastUsedAt?.toISOString()
    await service.verify(token)
    expect(await lastUsed()).toBe('2026-01-01T00:00:00.000Z')
    clock.advance('59s')
    await service.verify(token)
    expect(await lastUsed()).toBe('2026-01-01T00:00:00.000Z')
    clock.advance('1s')
    await service.verify(token)
    expect(await lastUsed()).toBe('2026-01-01T00:01:00.000Z')
  })

  it.each([
    ['fail/unknown-scope', { name: 'x', scopes: ['devices:read', 'admin'] }, 'GH_API_KEY_SCOPE_INVALID'],
    ['fail/no-scope', { name: 'x', scopes: [] }, 'GH_API_KEY_SCOPE_INVALID'],
    ['fail/name', { name: 'has space', scopes: ['devices:read'] }, 'GH_API_KEY_NAME_INVALID'],
    [
      'fail/expiry-in-past',
      { name: 'x', scopes: ['devices:read'], expiresAt: new Date('2025-12-31T00:00:00Z') },
      'GH_API_KEY_EXPIRY_INVALID',
    ],
  ])('%s', async (_name, req, code) => {
    const { service, store } = setup()
    await expect(service.create(req, 'op')).rejects.toThrow(expect.objectContaining({ code, statusCode: 400 }))
    expect(await store.apiKeys.list()).toEqual([])
    expect(await store.listAudit()).toEqual([])
  })

  it('refuses a second key with the same name, and revoking twice or an unknown name', async () => {
    const { service, store } = setup()
    await service.create({ name: 'a', scopes: ['devices:read'] }, 'op')
    await expect(service.create({ name: 'a', scopes: ['devices:read'] }, 'op')).rejects.toThrow(
      expect.objectContaining({ code: 'GH_API_KEY_EXISTS' }),
    )
    expect((await service.revoke('a', 'op:bob')).revokedAt?.toISOString()).toBe('2026-01-01T00:00:00.000Z')
    await expect(service.revoke('a', 'op')).rejects.toThrow(expect.objectContaining({ code: 'GH_API_KEY_REVOKED' }))
    await expect(service.revoke('zzz', 'op')).rejects.toThrow(expect.objectContaining({ code: 'GH_API_KEY_NOT_FOUND' }))
    expect((await store.listAudit()).map((e) => `${e.actor} ${e.action}`)).toEqual(['op:bob apikey.revoked', 'op apikey.created'])
    expect((await service.list()).map((k) => [k.name, k.revokedAt !== null])).toEqual([['a', true]])
  })
})

describe('parseExpiry', () => {
  it.each([
    ['ok/hours', '12h', { expiresInMs: 12 * 3_600_000 }],
    ['ok/days', '30d', { expiresInMs: 30 * 86_400_000 }],
    ['ok/weeks', '2w', { expiresInMs: 14 * 86_400_000 }],
    ['ok/date', '2027-01-31', { expiresAt: new Date('2027-01-31T00:00:00Z') }],
    ['ok/date-time', '2027-01-31T12:00:00Z', { expiresAt: new Date('2027-01-31T12:00:00Z') }],
  ])('%s', (_name, text, expected) => {
    expect(parseExpiry(text)).toEqual(expected)
  })

  it.each([
    ['fail/zero', '0d'],
    ['fail/unit', '30y'],
    ['fail/words', 'next week'],
    ['fail/bad-date', '2027-13-45'],
  ])('%s', (_name, text) => {
    expect(() => parseExpiry(text)).toThrow(expect.objectContaining({ code: 'GH_API_KEY_EXPIRY_INVALID' }))
  })
})
