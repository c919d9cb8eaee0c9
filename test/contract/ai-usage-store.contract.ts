import { describe, expect, it } from 'vitest'
import type { AiUsageStore, StoredInsight } from '../../provisioning/store/ai-usage-store.ts'

/**
 * What every AiUsageStore must do (MQTT.js abstract_store style, docs/conventions.md §14). The in-memory
 * store runs it in unit/, SQLite in integration/ai-bridge/, PostgreSQL in integration/postgres/. `make`
 * returns a fresh, empty store; `nodes` returns `count` stores on one fresh, empty registry, each on its own
 * connection as separate broker processes or cluster nodes would hold them (PostgreSQL: a PgDatabase pool
 * each).
 */
export function aiUsageStoreContract(
  name: string,
  make: () => AiUsageStore | Promise<AiUsageStore>,
  nodes: (count: number) => AiUsageStore[] | Promise<AiUsageStore[]>,
): void {
  const insight = (deviceId: string, n: number, at = `2026-03-01T12:00:${String(n).padStart(2, '0')}.000Z`): StoredInsight => ({
    id: `${deviceId}-${n}`,
    deviceId,
    at,
    data: { id: `${deviceId}-${n}`, deviceId, at, summary: `s${n}`, anomalies: [{ kind: 'model', message: 'm' }] },
  })

  const settlement = (deviceId: string, returnedRequests: number, tokens: number, day = '2026-03-01') => ({
    deviceId,
    day,
    returnedRequests,
    tokens,
  })

  describe(`${name} (AiUsageStore contract)`, () => {
    it('adds to a day, creating it, and keeps devices and days apart', async () => {
      const s = await make()
      expect(await s.getUsage('d1', '2026-03-01')).toBeUndefined()
      await s.addUsage('d1', '2026-03-01', 1, 60)
      await s.addUsage('d1', '2026-03-01', 2, 40)
      await s.addUsage('d1', '2026-03-02', 1, 0)
      await s.addUsage('d2', '2026-03-01', 5, 5)
      expect(await s.getUsage('d1', '2026-03-01')).toEqual({ deviceId: 'd1', day: '2026-03-01', requests: 3, tokens: 100 })
      expect((await s.listUsage('d1', '2026-02-01', '2026-03-31')).map((r) => r.day)).toEqual(['2026-03-01', '2026-03-02'])
      expect(await s.listUsage('d1', '2026-03-02', '2026-03-02')).toEqual([{ deviceId: 'd1', day: '2026-03-02', requests: 1, tokens: 0 }])
    })

    it('leases requests up to a maximum, and settles what was left and the tokens spent', async () => {
      const s = await make()
      await s.addUsage('d1', '2026-03-01', 3, 10)
      expect(await s.leaseRequests('d1', '2026-03-01', 4, 10)).toEqual({ granted: 4, requests: 7, tokens: 10 })
      expect(await s.leaseRequests('d1', '2026-03-01', 4, 10)).toEqual({ granted: 3, requests: 10, tokens: 10 })
      expect(await s.leaseRequests('d1', '2026-03-01', 4, 10)).toEqual({ granted: 0, requests: 10, tokens: 10 })
      expect(await s.leaseRequests('d2', '2026-03-01', 2, 5)).toEqual({ granted: 2, requests: 2, tokens: 0 })
      await s.settleUsage([settlement('d1', 2, 30)])
      expect(await s.getUsage('d1', '2026-03-01')).toEqual({ deviceId: 'd1', day: '2026-03-01', requests: 8, tokens: 40 })
      await s.settleUsage([settlement('d1', 100, 0)])
      expect((await s.getUsage('d1', '2026-03-01'))?.requests).toBe(0)
      await s.settleUsage([settlement('d3', 1, 5)])
      expect(await s.getUsage('d3', '2026-03-01')).toEqual({ deviceId: 'd3', day: '2026-03-01', requests: 0, tokens: 5 })
      await s.settleUsage([])
      expect(await s.getUsage('d3', '2026-03-01')).toEqual({ deviceId: 'd3', day: '2026-03-01', requests: 0, tokens: 5 })
    })

    it('settles many devices and days in one call, a device and day given more than once applied in turn', async () => {
      const s = await make()
      await s.addUsage('d1', '2026-03-01', 10, 100)
      await s.addUsage('d2', '2026-03-01', 3, 0)
      await s.addUsage('d2', '2026-03-02', 8, 1)
      await s.settleUsage([
        settlement('d1', 4, 20),
        settlement('d2', 5, 7), // more than the day's 3: down to 0, never below
        { deviceId: 'd2', day: '2026-03-02', returnedRequests: 2, tokens: 0 },
        settlement('d1', 1, 5),
        settlement('d9', 2, 9), // a day nobody leased here: created with the tokens, no requests
      ])
      expect(await s.getUsage('d1', '2026-03-01')).toEqual({ deviceId: 'd1', day: '2026-03-01', requests: 5, tokens: 125 })
      expect(await s.getUsage('d2', '2026-03-01')).toEqual({ deviceId: 'd2', day: '2026-03-01', requests: 0, tokens: 7 })
      expect(await s.getUsage('d2', '2026-03-02')).toEqual({ deviceId: 'd2', day: '2026-03-02', requests: 6, tokens: 1 })
      expect(await s.getUsage('d9', '2026-03-01')).toEqual({ deviceId: 'd9', day: '2026-03-01', requests: 0, tokens: 9 })
    })

    it('concurrent leases from three nodes on one registry never grant more than the maximum together', async () => {
      const stores = await nodes(3)
      const max = 25
      // 3 nodes x 20 leases of 2 at once, on a day nobody has used yet: 120 asked for, 25 to give
      const leases = await Promise.all(stores.flatMap((s) => Array.from({ length: 20 }, () => s.leaseRequests('d1', '2026-03-01', 2, max))))
      expect(leases.reduce((n, l) => n + l.granted, 0)).toBe(max)
      expect(leases.filter((l) => l.granted > 0)).toHaveLength(13) // twelve of 2, one of 1
      expect(Math.max(...leases.map((l) => l.requests))).toBe(max)
      for (const s of stores)
        expect(await s.getUsage('d1', '2026-03-01')).toEqual({ deviceId: 'd1', day: '2026-03-01', requests: max, tokens: 0 })
    })

    it('prunes usage before a day', async () => {
      const s = await make()
      for (const day of ['2026-01-01', '2026-02-01', '2026-03-01']) await s.addUsage('d1', day, 1, 1)
      expect(await s.pruneUsage('2026-02-01')).toBe(1)
      expect((await s.listUsage('d1', '2000-01-01', '2100-01-01')).map((r) => r.day)).toEqual(['2026-02-01', '2026-03-01'])
    })

    it('keeps the newest N insights per device, newest first, as they were given', async () => {
      const s = await make()
      for (let n = 1; n <= 5; n++) await s.appendInsights([insight('d1', n)], 3)
      await s.appendInsights([insight('d2', 1)], 3)
      expect((await s.listInsights('d1', 10)).map((i) => i.id)).toEqual(['d1-5', 'd1-4', 'd1-3'])
      expect((await s.listInsights('d1', 2)).map((i) => i.id)).toEqual(['d1-5', 'd1-4'])
      expect(await s.listInsights('d2', 10)).toEqual([insight('d2', 1)])
      expect(await s.listInsights('nobody', 10)).toEqual([])
    })

    it('keeps one insight per id: storing it again replaces it, as the newest', async () => {
      const s = await make()
      const at = '2026-03-01T12:00:00.000Z'
      for (let n = 1; n <= 2; n++) await s.appendInsights([insight('d1', n, at)], 5)
      await s.appendInsights([insight('d1', 1, at)], 5)
      expect((await s.listInsights('d1', 10)).map((i) => i.id)).toEqual(['d1-1', 'd1-2'])
    })

    it('orders insights with the same time by arrival', async () => {
      const s = await make()
      const at = '2026-03-01T12:00:00.000Z'
      for (let n = 1; n <= 3; n++) await s.appendInsights([insight('d1', n, at)], 2)
      expect((await s.listInsights('d1', 10)).map((i) => i.id)).toEqual(['d1-3', 'd1-2'])
    })

    it('stores a batch of several devices at once, oldest first, each device pruned to its newest N', async () => {
      const s = await make()
      await s.appendInsights([insight('d1', 1), insight('d2', 1), insight('d1', 2), insight('d1', 3), insight('d2', 2)], 2)
      expect((await s.listInsights('d1', 10)).map((i) => i.id)).toEqual(['d1-3', 'd1-2'])
      expect((await s.listInsights('d2', 10)).map((i) => i.id)).toEqual(['d2-2', 'd2-1'])
      await s.appendInsights([], 2) // nothing to store: nothing changes
      expect(await s.listInsights('d1', 10)).toHaveLength(2)
    })
  })
}
