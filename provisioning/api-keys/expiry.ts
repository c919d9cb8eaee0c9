import { ApiKeyExpiryInvalid } from '../errors.ts'

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
