import { describe, expect, it } from 'vitest'
import { createHistogram, observeHistogram } from '../../../certs/index.ts'

describe('histogram (plain data)', () => {
  it('counts each observation in the first bucket whose bound it does not exceed, and sums them', () => {
    const h = createHistogram([0.1, 1])
    for (const s of [0.05, 0.1, 0.5, 2, 3]) observeHistogram(h, s)
    expect(h.counts).toEqual([2, 1, 2])
    expect(h.sum).toBeCloseTo(5.65)
  })

  it('survives structuredClone (the AI bridge copies its stats with it)', () => {
    const h = createHistogram()
    observeHistogram(h, 0.002)
    expect(structuredClone(h)).toEqual(h)
  })
})
