import { describe, expect, it } from 'vitest'
import type { LimitsRecord, LimitsStore } from '../../provisioning/store/limits-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')
const t1 = new Date('2026-01-02T00:00:00.000Z')

const rec = (key: string, limits: Record<string, unknown>, over: Partial<LimitsRecord> = {}): LimitsRecord => ({
  key,
  limits,
  updatedAt: t0,
  updatedBy: 'operator:test',
  ...over,
})

/**
 * The behaviour every LimitsStore must have, written from SqliteLimitsStore's: SqliteLimitsStore runs it in
 * integration/provisioning/, PgLimitsStore in integration/postgres/. `make` returns a fresh store with no
 * limits, on a registry that holds the devices named.
 */
export function limitsStoreContract(name: string, make: (deviceIds: readonly string[]) => LimitsStore | Promise<LimitsStore>): void {
  describe(`${name} (LimitsStore contract)`, () => {
    it('keeps one document per tier, replaced as a whole on put, listed by tier', async () => {
      const store = await make([])
      expect(await store.listTiers()).toEqual([])
      await store.putTier(rec('standard', { publishRate: 5 }))
      await store.putTier(rec('gold', { publishRate: 50, nested: { a: [1, 2] } }))
      await store.putTier(rec('gold', { aiRequestsPerDay: 10 }, { updatedAt: t1, updatedBy: 'apikey:ops' }))
      expect(await store.getTier('gold')).toEqual(rec('gold', { aiRequestsPerDay: 10 }, { updatedAt: t1, updatedBy: 'apikey:ops' }))
      expect(await store.getTier('none')).toBeUndefined()
      expect((await store.listTiers()).map((r) => r.key)).toEqual(['gold', 'standard'])
    })

    it('keeps one document per device, replaced on put, deleted once', async () => {
      const store = await make(['pump-1', 'pump-2'])
      await store.putDevice(rec('pump-1', { packetRate: 2 }))
      await store.putDevice(rec('pump-1', { packetRate: 3 }, { updatedAt: t1 }))
      await store.putDevice(rec('pump-2', { packetRate: 9 }))
      expect(await store.getDevice('pump-1')).toEqual(rec('pump-1', { packetRate: 3 }, { updatedAt: t1 }))
      expect(await store.getDevice('ghost')).toBeUndefined()
      expect(await store.deleteDevice('pump-1')).toBe(true)
      expect(await store.deleteDevice('pump-1')).toBe(false)
      expect(await store.deleteDevice('ghost')).toBe(false)
      expect(await store.getDevice('pump-1')).toBeUndefined()
      expect(await store.getDevice('pump-2')).toEqual(rec('pump-2', { packetRate: 9 }))
    })

    it('hands out copies: changing a returned document changes nothing stored', async () => {
      const store = await make([])
      await store.putTier(rec('gold', { publishRate: 50 }))
      const got = (await store.getTier('gold'))!
      got.limits.publishRate = 1
      expect(await store.getTier('gold')).toEqual(rec('gold', { publishRate: 50 }))
    })
  })
}
