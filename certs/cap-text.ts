/**
 * Untrusted strings (a clientId, a will topic, a requested device id …) are stored and logged at most
 * this long: a CONNECT may carry 64 KiB in each, and refusals must not fill the disk or the log.
 */
export const MAX_UNTRUSTED_CHARS = 128

/** `value` when short enough, else its first `max` characters marked as cut: `abc…[+59872 chars]`. */
export function capText(value: string, max = MAX_UNTRUSTED_CHARS): string {
  if (value.length <= max) return value
  return `${value.slice(0, max)}…[+${value.length - max} chars]`
}

/** A copy of `fields` with every string value (top level and one level of arrays) capped by capText. */
export function capStrings<T extends object>(fields: T, max = MAX_UNTRUSTED_CHARS): T {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) {
    out[k] =
      typeof v === 'string' ? capText(v, max) : Array.isArray(v) ? v.map((x: unknown) => (typeof x === 'string' ? capText(x, max) : x)) : v
  }
  return out as T
}
