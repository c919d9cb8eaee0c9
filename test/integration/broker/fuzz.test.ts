import { describe, expect, it } from 'vitest'
import { runFuzz } from '../../fuzz/run-fuzz.ts'

// A bounded fuzz run (issue 17, "Bad input"): the broker runs in its own process (fuzz-broker.ts) behind
// real mutual TLS; `npm run fuzz -- --cases N --seed S` is the same run, larger.
describe('MQTT fuzzing', () => {
  it('survives every saved regression and 200 seeded cases, before and after CONNECT, with other devices unaffected', async () => {
    const v = await runFuzz({ seed: 17, cases: 200, batchSize: 100 })
    expect(v.failures).toEqual([])
    // every case ended with the broker closing the connection: none hung, no good CONNECT refused
    expect(v.outcomes).toEqual({ closed: v.cases + v.regressions })
    // the watching device got the marker of every batch (and of the first check) and was never disconnected
    expect(v.watcherReceived).toBe(v.batches + 1)
    // memory stays bounded: the heap after a forced GC grows by less than 16 MiB
    expect(v.heapAfter - v.heapBefore).toBeLessThan(16 * 2 ** 20)
  }, 180_000)
})
