import { describe, expect, it } from 'vitest'
import type { ApiKeyRecord, ApiKeyStore } from '../../provisioning/store/api-key-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')
const t1 = new Date('2026-01-02T00:00:00.000Z')

const key = (id: string, name: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id,
  name,
  secretHash: `h-${id}`,
  scopes: ['devices:read', 'audit:read'],
  createdAt: t0,
  expiresAt: null,
  lastUsedAt: null,
  revokedAt: null,
  previousSecretHash: null,
  previousSecretUntil: null,
  ...over,
})

/**
 * The behaviour every ApiKeyStore must have, written from SqliteApiKeyStore's: SqliteApiKeyStore runs it in
 * integration/provisioning/, PgApiKeyStore in integration/postgres/. `make` returns a fresh store with no keys.
 */
export function apiKeyStoreContract(name: string, make: () => ApiKeyStore | Promise<ApiKeyStore>): void {
  describe(`${name} (ApiKeyStore contract)`, () => {
    it('stores a key and reads it back with every field, by id and by name', async () => {
      const store = await make()
      const full = key('aaaaaaaaaaaa', 'dash', { expiresAt: new Date('2027-01-01T00:00:00.000Z'), scopes: ['apps:admin'] })
      await store.insert(full)
      expect(await store.getById('aaaaaaaaaaaa')).toEqual(full)
      expect(await store.getByName('dash')).toEqual(full)
      expect(await store.getById('bbbbbbbbbbbb')).toBeUndefined()
      expect(await store.getByName('nope')).toBeUndefined()
    })

    it('refuses a taken name or id as GH_API_KEY_EXISTS, naming the key, and keeps the first', async () => {
      const store = await make()
      await store.insert(key('aaaaaaaaaaaa', 'dash'))
      await expect(store.insert(key('cccccccccccc', 'dash'))).rejects.toMatchObject({
        code: 'GH_API_KEY_EXISTS',
        message: expect.stringContaining("'dash'"),
      })
      await expect(store.insert(key('aaaaaaaaaaaa', 'other'))).rejects.toMatchObject({ code: 'GH_API_KEY_EXISTS' })
      expect(await store.list()).toEqual([key('aaaaaaaaaaaa', 'dash')])
    })

    it('lists keys oldest first, by name within the same instant', async () => {
      const store = await make()
      await store.insert(key('cccccccccccc', 'zeta', { createdAt: new Date('2025-12-31T00:00:00.000Z') }))
      await store.insert(key('aaaaaaaaaaaa', 'dash'))
      await store.insert(key('bbbbbbbbbbbb', 'app'))
      expect((await store.list()).map((k) => k.name)).toEqual(['zeta', 'app', 'dash'])
    })

    it('revokes a key once, keeping the first revokedAt, and ignores an unknown id', async () => {
      const store = await make()
      await store.insert(key('aaaaaaaaaaaa', 'dash'))
      await store.revoke('aaaaaaaaaaaa', t1)
      await store.revoke('aaaaaaaaaaaa', new Date('2026-01-03T00:00:00.000Z'))
      await store.revoke('ghost', t1)
      expect(await store.getById('aaaaaaaaaaaa')).toEqual(key('aaaaaaaaaaaa', 'dash', { revokedAt: t1 }))
    })

    it('rotates a secret, keeping the old one as the previous until a time, and records the last use', async () => {
      const store = await make()
      await store.insert(key('aaaaaaaaaaaa', 'dash'))
      await store.insert(key('bbbbbbbbbbbb', 'app'))
      await store.rotate('aaaaaaaaaaaa', 'h-new', 'h-aaaaaaaaaaaa', t1)
      await store.touchLastUsed('aaaaaaaaaaaa', t0)
      await store.touchLastUsed('aaaaaaaaaaaa', t1)
      expect(await store.getById('aaaaaaaaaaaa')).toEqual(
        key('aaaaaaaaaaaa', 'dash', { secretHash: 'h-new', previousSecretHash: 'h-aaaaaaaaaaaa', previousSecretUntil: t1, lastUsedAt: t1 }),
      )
      expect(await store.getById('bbbbbbbbbbbb')).toEqual(key('bbbbbbbbbbbb', 'app'))
    })

    it('hands out copies: changing a returned key changes nothing stored', async () => {
      const store = await make()
      await store.insert(key('aaaaaaaaaaaa', 'dash'))
      const got = (await store.getById('aaaaaaaaaaaa'))!
      got.scopes.push('admin')
      got.revokedAt = t1
      expect(await store.getById('aaaaaaaaaaaa')).toEqual(key('aaaaaaaaaaaa', 'dash'))
    })
  })
}
