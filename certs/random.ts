import { randomBytes } from 'node:crypto'

/** The only source of randomness for serials, ids and secrets (docs/conventions.md §13). */
export interface Random {
  bytes(n: number): Uint8Array
}

export const cryptoRandom: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) }
