import { describe, expect, it } from 'vitest'
import type { DashboardSessionRecord, DashboardSessionStore, SessionBounds } from '../../provisioning/store/dashboard-session-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000)
const bounds: SessionBounds = { maxSessions: 3, idleMs: 60_000, maxAgeMs: 300_000 }

const rec = (idHash: string, over: Partial<DashboardSessionRecord> = {}): DashboardSessionRecord => ({
  idHash,
  keyId: 'k1',
  keyName: 'ops-dash',
  createdAt: t0,
  lastSeenAt: t0,
  ...over,
})

/**
 * The behaviour every DashboardSessionStore must have: InMemoryDashboardSessionStore runs it in
 * unit/provisioning/, SqliteDashboardSessionStore in integration/provisioning/, PgDashboardSessionStore in
 * integration/postgres/. `make` returns a fresh store with no sessions.
 */
export function dashboardSessionStoreContract(name: string, make: () => DashboardSessionStore | Promise<DashboardSessionStore>): void {
  describe(`${name} (DashboardSessionStore contract)`, () => {
    it('keeps a session by its hash, with its key and times, until it is removed', async () => {
      const store = await make()
      await store.create(rec('h1'), bounds)
      expect(await store.get('h1')).toEqual(rec('h1'))
      expect(await store.get('h2')).toBeUndefined()
      await store.remove('h1')
      expect(await store.get('h1')).toBeUndefined()
      expect(await store.count()).toBe(0)
    })

    it("returns a session as stored however long it is unused: a lookup only reads (expiry is the caller's, sessionExpired)", async () => {
      const store = await make()
      await store.create(rec('used'), bounds)
      await store.create(rec('idle'), bounds)
      await store.touch('used', at(50))
      expect(await store.get('used')).toEqual(rec('used', { lastSeenAt: at(50) }))
      expect(await store.get('idle')).toEqual(rec('idle'))
      expect(await store.count()).toBe(2)
    })

    it('keeps at most maxSessions: a new sign-in ends the oldest, and sweeps expired ones first', async () => {
      const store = await make()
      for (const h of ['a', 'b', 'c']) await store.create(rec(h), bounds)
      await store.create(rec('d', { createdAt: at(1), lastSeenAt: at(1) }), bounds)
      expect(await store.count()).toBe(3)
      expect(await store.get('a')).toBeUndefined()
      for (const h of ['b', 'c', 'd']) expect(await store.get(h)).toBeDefined()
      // at 60 s b and c are idle: a new sign-in sweeps them and keeps d
      await store.create(rec('e', { createdAt: at(60), lastSeenAt: at(60) }), bounds)
      expect(await store.count()).toBe(2)
      expect(await store.get('d')).toBeDefined()
    })

    it("ends every session of a key (its revocation), and only that key's", async () => {
      const store = await make()
      await store.create(rec('s1'), bounds)
      await store.create(rec('s2'), bounds)
      await store.create(rec('other', { keyId: 'k2', keyName: 'ops-2' }), bounds)
      expect(await store.removeForKey('k1')).toBe(2)
      expect(await store.removeForKey('k1')).toBe(0)
      expect(await store.get('s1')).toBeUndefined()
      expect(await store.get('other')).toEqual(rec('other', { keyId: 'k2', keyName: 'ops-2' }))
    })
  })
}
