import { ApiKeyExpiryInvalid, ApiKeyOverlapInvalid } from '../errors.ts'
import { MAX_ROTATION_OVERLAP_SECONDS } from './api-key-service.ts'

const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const

/**
 * `--expires` for API keys: a duration from now (`12h`, `30d`, `8w`) or an ISO 8601 date or date-time
 * (`2027-01-31`, `2027-01-31T12:00:00Z`). Pure: the service adds a duration to its own clock.
 */
export function parseExpiry(text: string): { expiresInMs: number } | { expiresAt: Date } {
  const rel = /^(\d{1,6})([hdw])$/.exec(text.trim())
  if (rel) {
    const n = Number(rel[1])
    if (n < 1) throw new ApiKeyExpiryInvalid(`'${text}' is not a positive duration`)
    return { expiresInMs: n * UNIT_MS[rel[2] as keyof typeof UNIT_MS] }
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    const at = new Date(text.trim())
    if (!Number.isNaN(at.getTime())) return { expiresAt: at }
  }
  throw new ApiKeyExpiryInvalid(`'${text.slice(0, 40)}': use a duration such as 12h, 30d or 8w, or an ISO date such as 2027-01-31`)
}

const OVERLAP_UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const

/** `apikey rotate --overlap`: seconds (`900`) or a duration (`30s`, `15m`, `24h`, `7d`), 0 to 30 days. */
export function parseOverlap(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim())
  const seconds = m ? Number(m[1]) * OVERLAP_UNIT_SECONDS[(m[2] || 's') as keyof typeof OVERLAP_UNIT_SECONDS] : Number.NaN
  if (!(seconds >= 0 && seconds <= MAX_ROTATION_OVERLAP_SECONDS))
    throw new ApiKeyOverlapInvalid(`'${text.slice(0, 40)}'`, String(MAX_ROTATION_OVERLAP_SECONDS))
  return seconds
}
