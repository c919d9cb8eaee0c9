import type { Random } from '../../certs/index.ts'

/** A Random that always returns `byte` repeated: for tests of what certs/ does with random bytes. */
export function fixedRandom(byte: number): Random {
  return { bytes: (n) => new Uint8Array(n).fill(byte) }
}

/** A Random that replays a seeded sequence (xorshift32): reproducible but varied bytes. */
export function seededRandom(seed = 1): Random {
  let s = seed >>> 0 || 1
  return {
    bytes(n) {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) {
        s ^= s << 13
        s >>>= 0
        s ^= s >>> 17
        s ^= s << 5
        s >>>= 0
        out[i] = s & 0xff
      }
      return out
    },
  }
}
