import { describe, expect, it } from 'vitest'
import type { AiUsageStore, StoredInsight } from '../../provisioning/store/ai-usage-store.ts'

/**
 * What every AiUsageStore must do (MQTT.js abstract_store style, docs/conventions.md §14). The in-memory
 * store runs it in unit/, SQLite in integration/. `make` returns a fresh, empty store.
 */
export function aiUsageStoreContract(name: string, make: () => AiUsageStore): void {
  const insight = (deviceId: string, n: number, at = `2026-03-01T12:00:${String(n).padStart(2, '0')}.000Z`): StoredInsight => ({
    id: `${deviceId}-${n}`,
    deviceId,
    at,
    data: { id: `${deviceId}-${n}`, deviceId, at, summary: `s${n}`, anomalies: [{ kind: 'model', message: 'm' }] },
  })

  describe(`${name} (AiUsageStore contract)`, () => {
    it('adds to a day, creating it, and keeps devices and days apart', () => {
      const s = make()
      expect(s.getUsage('d1', '2026-03-01')).toBeUndefined()
      s.addUsage('d1', '2026-03-01', 1, 60)
      s.addUsage('d1', '2026-03-01', 2, 40)
      s.addUsage('d1', '2026-03-02', 1, 0)
      s.addUsage('d2', '2026-03-01', 5, 5)
      expect(s.getUsage('d1', '2026-03-01')).toEqual({ deviceId: 'd1', day: '2026-03-01', requests: 3, tokens: 100 })
      expect(s.listUsage('d1', '2026-02-01', '2026-03-31').map((r) => r.day)).toEqual(['2026-03-01', '2026-03-02'])
      expect(s.listUsage('d1', '2026-03-02', '2026-03-02')).toEqual([{ deviceId: 'd1', day: '2026-03-02', requests: 1, tokens: 0 }])
    })

    it('leases requests up to a maximum, and settles what was left and the tokens spent', () => {
      const s = make()
      s.addUsage('d1', '2026-03-01', 3, 10)
      expect(s.leaseRequests('d1', '2026-03-01', 4, 10)).toEqual({ granted: 4, requests: 7, tokens: 10 })
      expect(s.leaseRequests('d1', '2026-03-01', 4, 10)).toEqual({ granted: 3, requests: 10, tokens: 10 })
      expect(s.leaseRequests('d1', '2026-03-01', 4, 10)).toEqual({ granted: 0, requests: 10, tokens: 10 })
      expect(s.leaseRequests('d2', '2026-03-01', 2, 5)).toEqual({ granted: 2, requests: 2, tokens: 0 })
      s.settleUsage('d1', '2026-03-01', 2, 30)
      expect(s.getUsage('d1', '2026-03-01')).toEqual({ deviceId: 'd1', day: '2026-03-01', requests: 8, tokens: 40 })
      s.settleUsage('d1', '2026-03-01', 100, 0)
      expect(s.getUsage('d1', '2026-03-01')?.requests).toBe(0)
      s.settleUsage('d3', '2026-03-01', 1, 5)
      expect(s.getUsage('d3', '2026-03-01')).toEqual({ deviceId: 'd3', day: '2026-03-01', requests: 0, tokens: 5 })
    })

    it('prunes usage before a day', () => {
      const s = make()
      for (const day of ['2026-01-01', '2026-02-01', '2026-03-01']) s.addUsage('d1', day, 1, 1)
      expect(s.pruneUsage('2026-02-01')).toBe(1)
      expect(s.listUsage('d1', '2000-01-01', '2100-01-01').map((r) => r.day)).toEqual(['2026-02-01', '2026-03-01'])
    })

    it('keeps the newest N insights per device, newest first, as they were given', () => {
      const s = make()
      for (let n = 1; n <= 5; n++) s.appendInsights([insight('d1', n)], 3)
      s.appendInsights([insight('d2', 1)], 3)
      expect(s.listInsights('d1', 10).map((i) => i.id)).toEqual(['d1-5', 'd1-4', 'd1-3'])
      expect(s.listInsights('d1', 2).map((i) => i.id)).toEqual(['d1-5', 'd1-4'])
      expect(s.listInsights('d2', 10)).toEqual([insight('d2', 1)])
      expect(s.listInsights('nobody', 10)).toEqual([])
    })

    it('orders insights with the same time by arrival', () => {
      const s = make()
      const at = '2026-03-01T12:00:00.000Z'
      for (let n = 1; n <= 3; n++) s.appendInsights([insight('d1', n, at)], 2)
      expect(s.listInsights('d1', 10).map((i) => i.id)).toEqual(['d1-3', 'd1-2'])
    })

    it('stores a batch of several devices at once, oldest first, each device pruned to its newest N', () => {
      const s = make()
      s.appendInsights([insight('d1', 1), insight('d2', 1), insight('d1', 2), insight('d1', 3), insight('d2', 2)], 2)
      expect(s.listInsights('d1', 10).map((i) => i.id)).toEqual(['d1-3', 'd1-2'])
      expect(s.listInsights('d2', 10).map((i) => i.id)).toEqual(['d2-2', 'd2-1'])
      s.appendInsights([], 2) // nothing to store: nothing changes
      expect(s.listInsights('d1', 10)).toHaveLength(2)
    })
  })
}
