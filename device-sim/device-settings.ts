import { METRICS, type MetricName, type TelemetryReading } from './telemetry.ts'

/**
 * How a simulated device understands its settings (README "Settings delivery"): documents
 * `{"version", "settings", "updatedAt"}` arrive on devices/<id>/settings; one is applied only when its
 * version is newer than the applied one. Two keys change behaviour:
 * - `interval`: seconds between telemetry messages (0.1 .. 86400; anything else is ignored);
 * - `thresholds.<metric>.min` / `.max` for temperature, humidity, vibration (the keys the broker's
 *   local analyzer reads too): a reading outside them makes the device publish an alert at once.
 * Pure functions; the device keeps the state.
 */

export interface SettingsDocument {
  version: number
  settings: Record<string, unknown>
  updatedAt?: string
}

export interface Bounds {
  min?: number
  max?: number
}

export type Thresholds = Partial<Record<MetricName, Bounds>>

export interface AppliedSettings {
  version: number
  /** the document's settings, as received (what the device reports) */
  settings: Record<string, unknown>
  /** ms between telemetry messages, from `interval`, or the device's default */
  intervalMs: number
  thresholds: Thresholds
}

export const MIN_INTERVAL_SECONDS = 0.1
export const MAX_INTERVAL_SECONDS = 86_400

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** The document in a settings payload, or null when it is not one. */
export function parseSettingsDocument(payload: Uint8Array | string): SettingsDocument | null {
  let doc: unknown
  try {
    doc = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'))
  } catch {
    return null
  }
  if (!isObject(doc) || !Number.isInteger(doc.version) || !isObject(doc.settings)) return null
  return { version: doc.version as number, settings: doc.settings, ...(typeof doc.updatedAt === 'string' && { updatedAt: doc.updatedAt }) }
}

/** The telemetry interval a settings document asks for, in ms, or `fallbackMs`. */
export function intervalMsOf(settings: Record<string, unknown>, fallbackMs: number): number {
  const s = settings.interval
  return isNumber(s) && s >= MIN_INTERVAL_SECONDS && s <= MAX_INTERVAL_SECONDS ? Math.round(s * 1000) : fallbackMs
}

/** `thresholds.<metric>.min/max` for the metrics the device measures (numbers only). */
export function thresholdsOf(settings: Record<string, unknown>): Thresholds {
  const out: Thresholds = {}
  const all = settings.thresholds
  if (!isObject(all)) return out
  for (const metric of METRICS) {
    const entry = all[metric]
    if (!isObject(entry)) continue
    const bounds: Bounds = {}
    if (isNumber(entry.min)) bounds.min = entry.min
    if (isNumber(entry.max)) bounds.max = entry.max
    if (bounds.min !== undefined || bounds.max !== undefined) out[metric] = bounds
  }
  return out
}

/**
 * The settings the device runs on after `doc` arrives, or null when `doc` is not newer than `current`
 * (the broker sends the current document on every subscribe, and changes may arrive out of order).
 */
export function applySettings(current: AppliedSettings | null, doc: SettingsDocument, defaultIntervalMs: number): AppliedSettings | null {
  if (current !== null && doc.version <= current.version) return null
  return {
    version: doc.version,
    settings: doc.settings,
    intervalMs: intervalMsOf(doc.settings, defaultIntervalMs),
    thresholds: thresholdsOf(doc.settings),
  }
}

/** What the device reports on devices/<id>/settings/reported. */
export function settingsReport(applied: AppliedSettings): { version: number; settings: Record<string, unknown> } {
  return { version: applied.version, settings: applied.settings }
}

export interface ThresholdCrossing {
  metric: MetricName
  value: number
  bound: 'min' | 'max'
  limit: number
}

/** Every threshold a reading is outside of. */
export function breaches(reading: TelemetryReading, thresholds: Thresholds): ThresholdCrossing[] {
  const out: ThresholdCrossing[] = []
  for (const metric of METRICS) {
    const b = thresholds[metric]
    if (!b) continue
    const value = reading[metric]
    if (b.max !== undefined && value > b.max) out.push({ metric, value, bound: 'max', limit: b.max })
    else if (b.min !== undefined && value < b.min) out.push({ metric, value, bound: 'min', limit: b.min })
  }
  return out
}

/**
 * Alerts on crossings, not on every reading outside: a metric alerts when it leaves its bounds and
 * again only after it has come back inside (or its thresholds changed).
 */
export function createCrossingDetector() {
  const outside = new Map<MetricName, string>()
  return {
    /** the crossings this reading starts */
    check(reading: TelemetryReading, thresholds: Thresholds): ThresholdCrossing[] {
      const now = breaches(reading, thresholds)
      const fresh = now.filter((c) => outside.get(c.metric) !== `${c.bound}:${c.limit}`)
      outside.clear()
      for (const c of now) outside.set(c.metric, `${c.bound}:${c.limit}`)
      return fresh
    },
    reset: () => outside.clear(),
  }
}

/** The alert message for a crossing (published on devices/<id>/telemetry/alerts). */
export function alertMessage(reading: TelemetryReading, c: ThresholdCrossing) {
  const word = c.bound === 'max' ? 'above its maximum' : 'below its minimum'
  return {
    type: 'threshold',
    seq: reading.seq,
    ts: reading.ts,
    metric: c.metric,
    value: c.value,
    bound: c.bound,
    limit: c.limit,
    message: `${c.metric} = ${c.value} is ${word} ${c.limit}`,
  }
}
