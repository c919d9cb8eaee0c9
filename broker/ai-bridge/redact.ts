import { isIPv6 } from 'node:net'
import type { AiBridgeOptions, RedactionRule } from './options.ts'

/**
 * Redaction, applied to every telemetry sample and template variable before anything leaves the
 * broker. Pure: value in, redacted copy out; linear in the size of the value.
 *   - keys are judged by name (see keyMatches): a key containing one of the rule's `fields` is removed
 *     with its value, wherever it occurs
 *   - keys are scrubbed like strings, so a key that is itself personal data (an e-mail) is replaced
 *   - in strings: e-mail addresses -> [email], card numbers (Luhn) -> [card], IBANs (mod 97) -> [iban],
 *     MAC addresses -> [mac], IPv6 and IPv4 -> [ip], phone numbers (7-15 digits with a leading '+' or
 *     separators) -> [phone]
 *   - coordinates are rounded to `coordinatePrecision` decimals: every number (or numeric string) at or
 *     below a key named like a coordinate or a place (lat, longitude_deg, coordinates, location, gps …:
 *     COORDINATE_WORDS), which covers GeoJSON and `[lon, lat]` arrays
 * Nesting deeper than MAX_DEPTH becomes '[truncated]'.
 */
export const MAX_DEPTH = 32

/**
 * A key with one of these words (or containing latitude, longitude or coordinate) is a coordinate, and
 * so is everything below it. Whole words, since location is in allocation and position in composition.
 */
const COORDINATE_WORDS = [
  'lat',
  'lon',
  'lng',
  'long',
  'coord',
  'coords',
  'location',
  'geolocation',
  'position',
  'geometry',
  'geo',
  'gps',
  'loc',
  'pos',
  'latlng',
  'latlon',
  'lnglat',
  'lonlat',
  'bbox',
]
/** field names of this length or less must be a whole word of the key ('pass' is in db_pass, not in bypass) */
const WHOLE_WORD_MAX = 4
const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
const MAC = /\b[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}\b|\b[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\b/g
/** candidates only: each is checked with net.isIPv6 */
const IPV6_CANDIDATE =
  /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[0-9A-Za-z]+)?(?![0-9A-Fa-f:]|\.\d)/g
const IPV4 = /(?<!\d|\d\.)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)/g
const PHONE_CANDIDATE = /(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{5,22}\d(?!\w)/g
/** digit groups joined by single separators, parentheses aside: +1 (555) 123-4567, 555.123.4567, +44 20 7946 0958 */
const PHONE_SHAPE = /^(?:\+|00)?\d+(?:[ .-]\d+)*$/
const DATE_PREFIX = /^\d{4}-\d{2}-\d{2}/
/** 13-19 digits, single spaces or dashes between them, first digit 2-6 (the card networks' ranges; not a
 * millisecond timestamp); candidates only: each is checked with Luhn */
const CARD_CANDIDATE = /(?<![\d-])[2-6](?:[ -]?\d){12,18}(?![\d])/g
/** country, check digits, 11-30 letters or digits, optionally in groups of four; candidates only: mod 97 */
const IBAN_CANDIDATE = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g
const NUMERIC = /^-?\d{1,4}\.\d+$/

export type Redactor = (value: unknown) => unknown

const normalizeKey = (k: string) => k.toLowerCase().replace(/[^a-z0-9]/g, '')
const wordsOf = (k: string) =>
  k
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .replace(/([A-Za-z])(\d)/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)

/**
 * Whether a key is named by one of `names` (already normalised): compared in lower case without
 * separators, a name matches if the key contains it (wifi_password, apiToken, ownerName); a name of
 * WHOLE_WORD_MAX characters or fewer must be a whole word of the key (db_pass, dbPass, PUK; not bypass).
 */
function keyMatches(key: string, names: { long: readonly string[]; short: ReadonlySet<string> }): boolean {
  const normalized = normalizeKey(key)
  if (names.long.some((n) => normalized.includes(n))) return true
  // words only when a short name occurs at all (splitting a long key into words is the costly part)
  for (const n of names.short) if (normalized.includes(n)) return wordsOf(key).some((w) => names.short.has(w))
  return false
}

function nameSet(names: readonly string[]) {
  const all = [...new Set(names.map(normalizeKey).filter((n) => n.length > 0))]
  return { long: all.filter((n) => n.length > WHOLE_WORD_MAX), short: new Set(all.filter((n) => n.length <= WHOLE_WORD_MAX)) }
}
const COORDINATES = { long: ['latitude', 'longitude', 'coordinate'], short: new Set(COORDINATE_WORDS) }

function luhnValid(digits: string): boolean {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2
    sum += d
  }
  return sum % 10 === 0
}

function ibanValid(compact: string): boolean {
  if (compact.length < 15 || compact.length > 34) return false
  const rearranged = compact.slice(4) + compact.slice(0, 4)
  let rest = 0
  for (const c of rearranged) {
    const v = c >= 'A' ? c.charCodeAt(0) - 55 : c.charCodeAt(0) - 48
    rest = v > 9 ? (rest * 100 + v) % 97 : (rest * 10 + v) % 97
  }
  return rest === 1
}

/** the IBAN, or the IBAN before a last group that the greedy pattern took from the following text */
function maskIban(m: string): string {
  if (ibanValid(m.replace(/ /g, ''))) return '[iban]'
  const cut = m.lastIndexOf(' ')
  return cut > 0 && ibanValid(m.slice(0, cut).replace(/ /g, '')) ? `[iban]${m.slice(cut)}` : m
}

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
  out = out.replace(CARD_CANDIDATE, (m) => (luhnValid(m.replace(/\D/g, '')) ? '[card]' : m))
  out = out.replace(IBAN_CANDIDATE, maskIban)
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
  const fields = nameSet(rule.fields)
  const factor = 10 ** rule.coordinatePrecision
  const round = (n: number) => Math.round(n * factor) / factor
  /** keys repeat from sample to sample: judge each short one once (at most 4096 of at most 64 characters) */
  const judged = new Map<string, Judgement>()
  function judge(key: string): Judgement {
    let j = judged.get(key)
    if (j === undefined) {
      j = keyMatches(key, fields) ? REMOVE : { as: redactString(key), coordinate: keyMatches(key, COORDINATES) }
      if (key.length <= 64) {
        if (judged.size >= 4096) judged.clear()
        judged.set(key, j)
      }
    }
    return j
  }

  function walk(value: unknown, depth: number, coordinate: boolean): unknown {
    if (typeof value === 'string') return coordinate && NUMERIC.test(value) ? String(round(Number(value))) : redactString(value)
    if (typeof value === 'number') return coordinate && Number.isFinite(value) ? round(value) : value
    if (value === null || typeof value !== 'object') return value
    if (depth >= MAX_DEPTH) return '[truncated]'
    if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, coordinate))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const j = judge(k)
      if (j !== REMOVE) put(out, j.as, walk(v, depth + 1, coordinate || j.coordinate))
    }
    return out
  }

  return (value) => walk(value, 0, false)
}

/** a key kept (as `as`: scrubbed like a string), or removed with its value */
type Judgement = { as: string; coordinate: boolean } | typeof REMOVE
const REMOVE = Symbol('remove')

/** Adds a key as data (never as a prototype); a key that redaction made equal to another gets a number. */
function put(out: Record<string, unknown>, key: string, value: unknown): void {
  let k = key
  for (let n = 2; Object.hasOwn(out, k); n++) k = `${key} (${n})`
  if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true })
  else out[k] = value
}
