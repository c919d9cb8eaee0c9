import { describe, expect, it } from 'vitest'
import type { RouteRecord, RouteStore } from '../../provisioning/store/route-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')

const route = (id: string, over: Partial<RouteRecord> = {}): RouteRecord => ({
  id,
  url: `https://example.test/${id}`,
  group: null,
  secret: `s-${id}`,
  batchSize: 100,
  batchMs: 1000,
  queueMax: 10_000,
  redact: true,
  consent: false,
  createdAt: t0,
  createdBy: 'operator:test',
  ...over,
})

/**
 * The behaviour every RouteStore must have, written from SqliteRouteStore's: SqliteRouteStore runs it in
 * integration/provisioning/, PgRouteStore in integration/postgres/. `make` returns a fresh store with no routes.
 */
export function routeStoreContract(name: string, make: () => RouteStore | Promise<RouteStore>): void {
  describe(`${name} (RouteStore contract)`, () => {
    it('stores a route and reads it back with every field (booleans, a group or null)', async () => {
      const store = await make()
      await store.insert(route('r1'))
      await store.insert(route('r2', { group: 'pumps', redact: false, consent: true, batchSize: 1, batchMs: 60_000, queueMax: 5 }))
      expect(await store.get('r1')).toEqual(route('r1'))
      expect(await store.get('r2')).toEqual(
        route('r2', { group: 'pumps', redact: false, consent: true, batchSize: 1, batchMs: 60_000, queueMax: 5 }),
      )
      expect(await store.get('nope')).toBeUndefined()
    })

    it('lists routes oldest first, by id within the same instant, and counts them', async () => {
      const store = await make()
      expect(await store.list()).toEqual([])
      expect(await store.count()).toBe(0)
      await store.insert(route('r3', { createdAt: new Date('2026-01-03T00:00:00.000Z') }))
      await store.insert(route('r2'))
      await store.insert(route('r1'))
      expect((await store.list()).map((r) => r.id)).toEqual(['r1', 'r2', 'r3'])
      expect(await store.count()).toBe(3)
    })

    it('refuses a second route with the same id, keeping the first', async () => {
      const store = await make()
      await store.insert(route('r1'))
      await expect(store.insert(route('r1', { url: 'https://other.test/' }))).rejects.toThrow()
      expect(await store.list()).toEqual([route('r1')])
    })

    it('deletes a route once: true when there was one', async () => {
      const store = await make()
      await store.insert(route('r1'))
      await store.insert(route('r2'))
      expect(await store.delete('r1')).toBe(true)
      expect(await store.delete('r1')).toBe(false)
      expect(await store.delete('ghost')).toBe(false)
      expect(await store.get('r1')).toBeUndefined()
      expect((await store.list()).map((r) => r.id)).toEqual(['r2'])
      expect(await store.count()).toBe(1)
    })
  })
}
