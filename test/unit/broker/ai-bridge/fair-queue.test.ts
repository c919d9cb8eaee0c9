import { describe, expect, it } from 'vitest'
import { createFairQueue } from '../../../../broker/ai-bridge/fair-queue.ts'

describe('createFairQueue', () => {
  it('takes round-robin across keys, one item per key at a time until release', () => {
    const q = createFairQueue<string>({ maxTotal: 100, maxPerKey: 100 })
    for (const item of ['a1', 'a2', 'a3']) q.push('a', item)
    q.push('b', 'b1')
    q.push('c', 'c1')
    const taken: string[] = []
    for (;;) {
      const next = q.take()
      if (!next) break
      taken.push(next.item)
    }
    expect(taken).toEqual(['a1', 'b1', 'c1']) // a is busy until released
    q.release('b')
    q.release('c')
    q.release('a')
    expect(q.take()).toEqual({ key: 'a', item: 'a2' })
    q.push('b', 'b2')
    expect(q.take()).toEqual({ key: 'b', item: 'b2' })
    expect(q.take()).toBeUndefined()
    q.release('a')
    expect(q.take()).toEqual({ key: 'a', item: 'a3' })
    expect(q.size()).toBe(0)
  })

  it('refuses past the per-key and the total bound, unless forced', () => {
    const q = createFairQueue<number>({ maxTotal: 3, maxPerKey: 2 })
    expect([q.push('a', 1), q.push('a', 2), q.push('a', 3)]).toEqual(['queued', 'queued', 'key-full'])
    expect([q.push('b', 1), q.push('c', 1)]).toEqual(['queued', 'full'])
    expect(q.push('c', 2, true)).toBe('queued')
    expect(q.size()).toBe(4)
    expect(q.clear().sort()).toEqual([1, 1, 2, 2])
    expect(q.size()).toBe(0)
    expect(q.take()).toBeUndefined()
  })

  it('keeps O(1) behaviour over many items (the FIFO compacts itself)', () => {
    const q = createFairQueue<number>({ maxTotal: 100_000, maxPerKey: 100_000 })
    for (let i = 0; i < 50_000; i++) q.push('a', i)
    let sum = 0
    for (let i = 0; i < 50_000; i++) {
      const next = q.take()
      sum += next?.item ?? 0
      q.release('a')
    }
    expect(sum).toBe((49_999 * 50_000) / 2)
    expect(q.size()).toBe(0)
  })
})
