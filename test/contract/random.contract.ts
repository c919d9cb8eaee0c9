import { describe, expect, it } from 'vitest'
import type { Random } from '../../certs/index.ts'

/**
 * What certs/ may rely on from a Random: cryptoRandom and test/helpers/random.ts (seededRandom,
 * fixedRandom). How random the bytes are is the real one's business alone.
 */
export function randomContract(name: string, make: () => Random): void {
  describe(`${name} (Random contract)`, () => {
    it('gives exactly the number of bytes asked for, zero included', () => {
      const random = make()
      for (const n of [0, 1, 16, 20, 33]) {
        const bytes = random.bytes(n)
        expect(bytes).toBeInstanceOf(Uint8Array)
        expect(bytes.length).toBe(n)
      }
    })

    it('gives a new array each call, sharing no memory with an earlier one', () => {
      const random = make()
      const first = random.bytes(16)
      const second = random.bytes(16)
      expect(second).not.toBe(first)
      expect(second.buffer).not.toBe(first.buffer)
    })
  })
}
