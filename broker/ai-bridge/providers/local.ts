import type { InsightAnomaly } from '../bridge-deps.ts'
import type { LocalProviderOptions } from '../options.ts'
import { lookupPath } from '../template.ts'
import { NO_USAGE, type InsightProvider, type InsightRequest, type ProviderResult } from './provider.ts'
import { RollingStats } from './rolling-stats.ts'

/**
 * The default provider: no network, no cost. Per device and numeric metric (dotted path of a numeric
 * field: 'temp', 'engine.rpm') it keeps rolling statistics and reports, for each window:
 *   - z-score anomalies: |value - mean| / std > zThreshold, once minSamples were seen
 *   - threshold breaches from the device's settings:
 *       { "thresholds": { "temp": { "max": 80 }, "engine.rpm": { "min": 500, "max": 6000 } } }
 *     (a dotted key, or the same path nested: { "thresholds": { "engine": { "rpm": { "min": 500 } } } })
 *   - the trend of each metric (least-squares slope over the last trendWindow samples) in the summary
 * Usage is 0 tokens. Memory: maxMetrics per device, maxTrackedDevices devices (least recently seen dropped).
 */
const MAX_SUMMARY_METRICS = 8
const MAX_LEAF_DEPTH = 8

export function numericLeaves(data: Record<string, unknown>, prefix = '', depth = 0, out: [string, number][] = []): [string, number][] {
  for (const [k, v] of Object.entries(data)) {
    const path = prefix ? `${prefix}.${k}` : k
    if (typeof v === 'number' && Number.isFinite(v)) out.push([path, v])
    else if (v && typeof v === 'object' && !Array.isArray(v) && depth < MAX_LEAF_DEPTH)
      numericLeaves(v as Record<string, unknown>, path, depth + 1, out)
  }
  return out
}

/** settings.thresholds for a metric: the dotted key first, then the nested path. */
export function thresholdFor(settings: Record<string, unknown>, metric: string): { min?: number; max?: number } | undefined {
  const all = settings.thresholds
  if (!all || typeof all !== 'object') return undefined
  const candidates = [Object.hasOwn(all, metric) ? (all as Record<string, unknown>)[metric] : undefined, lookupPath(all, metric)]
  for (const c of candidates) {
    if (!c || typeof c !== 'object') continue
    const { min, max } = c as { min?: unknown; max?: unknown }
    const t: { min?: number; max?: number } = {}
    if (typeof min === 'number') t.min = min
    if (typeof max === 'number') t.max = max
    if (t.min !== undefined || t.max !== undefined) return t
  }
  return undefined
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2))

export function createLocalProvider(options: LocalProviderOptions, bounds: { maxTrackedDevices: number }): InsightProvider {
  const devices = new Map<string, Map<string, RollingStats>>()

  function statsOf(deviceId: string): Map<string, RollingStats> {
    let m = devices.get(deviceId)
    if (m) devices.delete(deviceId)
    else {
      m = new Map()
      if (devices.size >= bounds.maxTrackedDevices) {
        const oldest = devices.keys().next()
        if (!oldest.done) devices.delete(oldest.value)
      }
    }
    devices.set(deviceId, m)
    return m
  }

  function trendText(s: RollingStats): string {
    const t = s.slope()
    if (!t) return 'no trend yet'
    const change = Math.abs(t.value * t.span)
    if (change === 0 || change < 0.5 * s.std) return 'steady'
    return `${t.value > 0 ? 'rising' : 'falling'} ${fmt(Math.abs(t.value))}/${t.perMinute ? 'min' : 'sample'}`
  }

  return {
    name: 'local',
    defaultModel: options.model,
    async analyze(request: InsightRequest): Promise<ProviderResult> {
      const metrics = statsOf(request.deviceId)
      const found = new Map<string, InsightAnomaly & { count: number }>()
      const touched = new Set<string>()
      const note = (key: string, a: InsightAnomaly, worse: (prev: number, next: number) => boolean) => {
        const prev = found.get(key)
        if (!prev) found.set(key, { ...a, count: 1 })
        else {
          prev.count++
          if (a.value !== undefined && prev.value !== undefined && worse(prev.value, a.value))
            Object.assign(prev, { value: a.value, message: a.message })
        }
      }
      for (const sample of request.telemetry) {
        const atMs = Date.parse(sample.at)
        for (const [metric, value] of numericLeaves(sample.data)) {
          let s = metrics.get(metric)
          if (!s) {
            if (metrics.size >= options.maxMetrics) continue
            s = new RollingStats(options.trendWindow)
            metrics.set(metric, s)
          }
          touched.add(metric)
          const z = s.n >= options.minSamples ? s.zScore(value) : null
          if (z !== null && Math.abs(z) > options.zThreshold) {
            note(
              `z:${metric}`,
              {
                kind: 'zscore',
                metric,
                value,
                message: `${metric} = ${fmt(value)} is ${fmt(Math.abs(z))} standard deviations from its mean ${fmt(s.mean)}`,
              },
              (p, n) => Math.abs(n - s.mean) > Math.abs(p - s.mean),
            )
          }
          const t = thresholdFor(request.context.settings, metric)
          if (t?.max !== undefined && value > t.max)
            note(
              `max:${metric}`,
              { kind: 'threshold', metric, value, message: `${metric} = ${fmt(value)} is above its maximum ${fmt(t.max)}` },
              (p, n) => n > p,
            )
          if (t?.min !== undefined && value < t.min)
            note(
              `min:${metric}`,
              { kind: 'threshold', metric, value, message: `${metric} = ${fmt(value)} is below its minimum ${fmt(t.min)}` },
              (p, n) => n < p,
            )
          s.push(value, Number.isNaN(atMs) ? 0 : atMs)
        }
      }
      const anomalies: InsightAnomaly[] = [...found.values()].map(({ count, ...a }) =>
        count > 1 ? { ...a, message: `${a.message} (${count} samples)` } : a,
      )
      const parts = [...touched].slice(0, MAX_SUMMARY_METRICS).map((m) => {
        const s = metrics.get(m) as RollingStats
        return `${m} ${fmt(s.last() ?? s.mean)} (mean ${fmt(s.mean)}, ${trendText(s)})`
      })
      const more = touched.size > MAX_SUMMARY_METRICS ? `; ${touched.size - MAX_SUMMARY_METRICS} more metrics` : ''
      const summary =
        touched.size === 0
          ? `${request.telemetry.length} samples without numeric fields`
          : `${request.telemetry.length} samples: ${parts.join('; ')}${more}. ${anomalies.length === 0 ? 'No anomalies.' : `${anomalies.length} anomalies.`}`
      return { summary, anomalies, usage: { ...NO_USAGE } }
    },
  }
}
