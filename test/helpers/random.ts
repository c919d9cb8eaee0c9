import { randomBytes } from 'node:crypto'
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

/**
 * cryptoRandom, with the first of every 16 bytes (a certificate serial's, randomSerialBytes) set to `first`:
 * 0x0a makes serials that openssl and Node print as "0A…", @peculiar/x509 as "0a…" and the registry, in its
 * canonical form (normalizeSerial), as "a…". Other lengths (keys, ids, tokens) are left alone.
 */
export function serialFirstByteRandom(first: number): Random {
  return {
    bytes(n) {
      const out = new Uint8Array(randomBytes(n))
      if (n === 16) out[0] = first
      return out
    },
  }
}
