import { isIPv6 } from 'node:net'
import type { AiBridgeOptions, RedactionRule } from './options.ts'

/**
 * Redaction, applied to every telemetry sample and template variable before anything leaves the
 * broker. Pure: value in, redacted copy out.
 *   - configured field names are removed wherever they occur (keys compared without case, '_' or '-')
 *   - in strings: e-mail addresses -> [email], MAC addresses -> [mac], IPv6 and IPv4 -> [ip],
 *     phone numbers (7-15 digits with a leading '+' or separators) -> [phone]
 *   - numeric lat/latitude/lon/lng/long/longitude fields are rounded to `coordinatePrecision` decimals
 * Nesting deeper than MAX_DEPTH becomes '[truncated]'.
 */
export const MAX_DEPTH = 32

const COORDINATE_KEYS = new Set(['lat', 'latitude', 'lon', 'lng', 'long', 'longitude'])
const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
const MAC = /\b[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}\b|\b[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\b/g
/** candidates only: each is checked with net.isIPv6 */
const IPV6_CANDIDATE = /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[0-9A-Za-z]+)?(?![0-9A-Fa-f:]|\.\d)/g
const IPV4 = /(?<!\d|\d\.)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)/g
const PHONE_CANDIDATE = /(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{5,22}\d(?!\w)/g
/** digit groups joined by single separators, parentheses aside: +1 (555) 123-4567, 555.123.4567, +44 20 7946 0958 */
const PHONE_SHAPE = /^(?:\+|00)?\d+(?:[ .-]\d+)*$/
const DATE_PREFIX = /^\d{4}-\d{2}-\d{2}/

export interface Redactor {
  (value: unknown): unknown
}

const normalizeKey = (k: string) => k.toLowerCase().replace(/[_-]/g, '')

/** The rule for a group: the default's fields plus the group's, and the group's precision if it sets one. */
export function redactionRuleFor(options: Pick<AiBridgeOptions, 'redaction'>, group: string | null): RedactionRule {
  const base = options.redaction.default
  const g = group === null ? undefined : options.redaction.groups[group]
  if (!g) return base
  return { fields: [...base.fields, ...(g.fields ?? [])], coordinatePrecision: g.coordinatePrecision ?? base.coordinatePrecision }
}

const HAS_DIGIT = /\d/

export function redactString(s: string): string {
  if (s.length < 7) return s // nothing below can match something this short
  // Each pattern runs only where its anchor character occurs: on a long run of word characters the
  // e-mail pattern alone is quadratic (every start position scans to the end looking for '@'), and
  // telemetry strings are mostly plain words.
  let out = s.includes('@') ? s.replace(EMAIL, '[email]') : s
  if (out.includes(':') || out.includes('-') || out.includes('.')) out = out.replace(MAC, '[mac]')
  if (out.includes(':')) out = out.replace(IPV6_CANDIDATE, (m) => (isIPv6(m.replace(/%.*$/, '')) ? '[ip]' : m))
  if (!HAS_DIGIT.test(out)) return out
  if (out.includes('.')) out = out.replace(IPV4, '[ip]')
  out = out.replace(PHONE_CANDIDATE, (m) => {
    const digits = m.replace(/\D/g, '').length
    const shape = m.replace(/\(([\d]+)\)\s?/g, '$1 ').trim()
    const separated = /^(\+|00)/.test(m) || /[ ().-]/.test(m)
    if (digits < 7 || digits > 15 || !separated || !PHONE_SHAPE.test(shape) || DATE_PREFIX.test(m)) return m
    return '[phone]'
  })
  return out
}

export function createRedactor(rule: RedactionRule): Redactor {
  const fields = new Set(rule.fields.map(normalizeKey))
  const factor = 10 ** rule.coordinatePrecision
  const round = (n: number) => Math.round(n * factor) / factor

  function walk(value: unknown, depth: number, key: string | null): unknown {
    if (typeof value === 'string') return redactString(value)
    if (typeof value === 'number') return key !== null && COORDINATE_KEYS.has(key.toLowerCase()) && Number.isFinite(value) ? round(value) : value
    if (value === null || typeof value !== 'object') return value
    if (depth >= MAX_DEPTH) return '[truncated]'
    if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, null))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (fields.has(normalizeKey(k))) continue
      out[k] = walk(v, depth + 1, k)
    }
    return out
  }

  return (value) => walk(value, 0, null)
}
