import { describe, expect, it } from 'vitest'
import { createDailyBudgets, leaseSlice } from '../../../../broker/ai-bridge/budgets.ts'
import { createAiUsageService } from '../../../../provisioning/ai-usage/ai-usage-service.ts'
import { InMemoryAiUsageStore } from '../../../../provisioning/ai-usage/in-memory-ai-usage-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'

const DAY = '2026-03-01'
const ledger = () => createAiUsageService({ store: new InMemoryAiUsageStore(), clock: fixedClock(`${DAY}T12:00:00Z`) })

describe('createDailyBudgets (leases of the daily budget, written behind)', () => {
  it('leases 1% of the budget at a time, at least 1 and at most 100', () => {
    expect([1, 99, 100, 250, 5000, 1_000_000].map(leaseSlice)).toEqual([1, 1, 1, 2, 50, 100])
  })

  it('three nodes on one ledger, taking in turns, spend the budget exactly once', async () => {
    const usage = ledger()
    const nodes = [0, 1, 2].map(() => createDailyBudgets(usage, { maxTrackedDevices: 10 }))
    const limits = { dailyRequests: 250, dailyTokens: 1e9 }
    let ok = 0
    for (let round = 0; round < 200; round++) {
      for (const [i, node] of nodes.entries()) {
        if ((await node.take('d1', DAY, limits)) === 'ok') ok++
        if (round % 7 === i) await node.flush() // flushes at their own times give slices back
      }
    }
    expect(ok).toBe(250)
    for (const node of nodes) await node.flush()
    expect(await usage.get('d1', DAY)).toEqual({ requests: 250, tokens: 0 })
  })

  it('counts tokens locally until the flush, and refuses once the day used dailyTokens', async () => {
    const usage = ledger()
    const budgets = createDailyBudgets(usage, { maxTrackedDevices: 10 })
    const limits = { dailyRequests: 1000, dailyTokens: 100 }
    expect(await budgets.take('d1', DAY, limits)).toBe('ok')
    budgets.spend('d1', DAY, 60)
    expect(await usage.get('d1', DAY)).toEqual({ requests: 10, tokens: 0 }) // a slice leased, tokens not written yet
    expect(await budgets.take('d1', DAY, limits)).toBe('ok')
    budgets.spend('d1', DAY, 60)
    expect(await budgets.take('d1', DAY, limits)).toBe('daily-tokens')
    await budgets.flush()
    expect(await usage.get('d1', DAY)).toEqual({ requests: 2, tokens: 120 })
  })

  it('a lowered budget applies to the next request; what it can no longer spend goes back', async () => {
    const usage = ledger()
    const budgets = createDailyBudgets(usage, { maxTrackedDevices: 10 })
    for (let i = 0; i < 3; i++) expect(await budgets.take('d1', DAY, { dailyRequests: 10_000, dailyTokens: 1e9 })).toBe('ok')
    const lowered = { dailyRequests: 4, dailyTokens: 1e9 }
    expect(await budgets.take('d1', DAY, lowered)).toBe('ok')
    expect(await budgets.take('d1', DAY, lowered)).toBe('daily-requests')
    expect(budgets.knownSpent('d1', DAY)).toBe(true)
    await budgets.flush()
    expect(await usage.get('d1', DAY)).toEqual({ requests: 4, tokens: 0 })
  })

  it('a request given back is spent again; a failed flush is kept for the next one', async () => {
    const usage = ledger()
    let fail = true
    const flaky = {
      lease: usage.lease,
      settle: (...a: Parameters<typeof usage.settle>) => (fail ? Promise.reject(new Error('registry down')) : usage.settle(...a)),
    }
    const budgets = createDailyBudgets(flaky, { maxTrackedDevices: 10 })
    const limits = { dailyRequests: 1, dailyTokens: 1e9 }
    expect(await budgets.take('d1', DAY, limits)).toBe('ok')
    budgets.giveBack('d1', DAY)
    expect(await budgets.take('d1', DAY, limits)).toBe('ok')
    budgets.spend('d1', DAY, 5)
    await expect(budgets.flush()).rejects.toThrow('registry down')
    fail = false
    await budgets.flush()
    expect(await usage.get('d1', DAY)).toEqual({ requests: 1, tokens: 5 })
  })

  it('a flush settles every due device in one ledger call (one transaction)', async () => {
    const usage = ledger()
    const calls: number[] = []
    const counting = {
      lease: usage.lease,
      settle: (...a: Parameters<typeof usage.settle>) => {
        calls.push(a[0].length)
        return usage.settle(...a)
      },
    }
    const budgets = createDailyBudgets(counting, { maxTrackedDevices: 10 })
    const limits = { dailyRequests: 1000, dailyTokens: 1e9 }
    for (const id of ['d1', 'd2', 'd3']) {
      expect(await budgets.take(id, DAY, limits)).toBe('ok')
      budgets.spend(id, DAY, 7)
    }
    await budgets.flush()
    expect(calls).toEqual([3])
    for (const id of ['d1', 'd2', 'd3']) expect(await usage.get(id, DAY)).toEqual({ requests: 1, tokens: 7 })
    await budgets.flush() // nothing owed: no call
    expect(calls).toEqual([3])
  })

  it('a new UTC day starts a new lease and settles the old one', async () => {
    const usage = ledger()
    const budgets = createDailyBudgets(usage, { maxTrackedDevices: 10 })
    const limits = { dailyRequests: 1000, dailyTokens: 1e9 }
    expect(await budgets.take('d1', DAY, limits)).toBe('ok')
    expect(await budgets.take('d1', '2026-03-02', limits)).toBe('ok')
    await budgets.flush()
    expect(await usage.get('d1', DAY)).toEqual({ requests: 1, tokens: 0 })
    expect(await usage.get('d1', '2026-03-02')).toEqual({ requests: 1, tokens: 0 })
  })
})
