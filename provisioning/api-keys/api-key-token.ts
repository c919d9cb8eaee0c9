import { createHash, timingSafeEqual } from 'node:crypto'
import type { Random } from '../../certs/index.ts'

/**
 * An API key is `ghk_<id>_<secret>`: `id` is 12 lowercase hex characters (6 random bytes) that name the
 * stored record, `secret` is 32 random bytes in base64url (43 characters, which may contain `_` and `-`).
 * The prefix makes leaked keys easy to find with secret scanners. Only SHA-256(secret) is stored.
 */
export const API_KEY_PREFIX = 'ghk_'
const SECRET_BYTES = 32
const TOKEN_PATTERN = /^ghk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/

export interface ParsedApiKey {
  id: string
  secret: string
}

export function newApiKeyId(random: Random): string {
  return Buffer.from(random.bytes(6)).toString('hex')
}

export function newApiKeySecret(random: Random): string {
  return Buffer.from(random.bytes(SECRET_BYTES)).toString('base64url')
}

export const formatApiKey = (id: string, secret: string): string => `${API_KEY_PREFIX}${id}_${secret}`

/** The parts of a well-formed key, or undefined. Length is capped first so the regex sees little. */
export function parseApiKey(token: string): ParsedApiKey | undefined {
  if (token.length > 64) return undefined
  const m = TOKEN_PATTERN.exec(token)
  return m ? { id: m[1] as string, secret: m[2] as string } : undefined
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

/** Constant-time comparison of two SHA-256 digests (hex). Both are 32 bytes unless a stored hash is corrupt. */
export function digestsEqual(presentedHex: string, storedHex: string): boolean {
  const a = Buffer.from(presentedHex, 'hex')
  const b = Buffer.from(storedHex, 'hex')
  const sameLength = a.length === b.length
  return timingSafeEqual(a, sameLength ? b : a) && sameLength
}
