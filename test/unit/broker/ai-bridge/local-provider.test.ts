import { describe, expect, it } from 'vitest'
import { createLocalProvider, thresholdFor } from '../../../../broker/ai-bridge/providers/local.ts'
import type { InsightRequest, TelemetrySample } from '../../../../broker/ai-bridge/providers/provider.ts'

const options = { model: 'gatehouse-local-stats', minSamples: 10, zThreshold: 3, trendWindow: 20, maxMetrics: 4 }
const t0 = Date.parse('2026-03-01T12:00:00Z')
const sample = (i: number, data: Record<string, unknown>): TelemetrySample => ({
  at: new Date(t0 + i * 60_000).toISOString(),
  subtopic: '',
  data,
})
const request = (telemetry: TelemetrySample[], settings: Record<string, unknown> = {}): InsightRequest => ({
  deviceId: 'd1',
  model: 'gatehouse-local-stats',
  prompt: '',
  telemetry,
  context: { tier: 'standard', group: null, settings },
})

describe('the local provider', () => {
  it('flags a z-score anomaly only once minSamples were seen, and reports no tokens', async () => {
    const p = createLocalProvider(options, { maxTrackedDevices: 10 })
    const normal = Array.from({ length: 9 }, (_, i) => sample(i, { temp: 20 + (i % 3) * 0.5 }))
    const early = await p.analyze(request([...normal, sample(9, { temp: 90 })]))
    expect(early.anomalies).toEqual([]) // 9 samples before it: not judged yet
    expect(early.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0 })
    const more = Array.from({ length: 20 }, (_, i) => sample(10 + i, { temp: 20 + (i % 3) * 0.5 }))
    await p.analyze(request(more))
    const r = await p.analyze(request([sample(40, { temp: 95 })]))
    expect(r.anomalies).toEqual([expect.objectContaining({ kind: 'zscore', metric: 'temp', value: 95 })])
  })

  it('reports threshold breaches from settings.thresholds (dotted or nested), once per metric and side with a count', async () => {
    const p = createLocalProvider(options, { maxTrackedDevices: 10 })
    const settings = { thresholds: { temp: { max: 80 }, engine: { rpm: { min: 500 } } } }
    const r = await p.analyze(
      request([sample(0, { temp: 85, engine: { rpm: 400 } }), sample(1, { temp: 90, engine: { rpm: 600 } })], settings),
    )
    expect(r.anomalies).toEqual([
      { kind: 'threshold', metric: 'temp', value: 90, message: 'temp = 90 is above its maximum 80 (2 samples)' },
      { kind: 'threshold', metric: 'engine.rpm', value: 400, message: 'engine.rpm = 400 is below its minimum 500' },
    ])
    expect(thresholdFor({ thresholds: { 'engine.rpm': { min: 1 } } }, 'engine.rpm')).toEqual({ min: 1 })
    expect(thresholdFor({ thresholds: { temp: { max: 'high' } } }, 'temp')).toBeUndefined()
  })

  it('describes the trend of each metric (least-squares slope per minute)', async () => {
    const p = createLocalProvider(options, { maxTrackedDevices: 10 })
    const rising = Array.from({ length: 10 }, (_, i) => sample(i, { temp: 20 + i * 2, hum: 40 }))
    const r = await p.analyze(request(rising))
    expect(r.summary).toContain('temp 38 (mean 29, rising 2/min)')
    expect(r.summary).toContain('hum 40 (mean 40, steady)')
  })

  it('tracks at most maxMetrics numeric fields per device, and keeps devices apart', async () => {
    const p = createLocalProvider(options, { maxTrackedDevices: 10 })
    const r = await p.analyze(request([sample(0, { a: 1, b: 2, c: 3, d: 4, e: 5, text: 'x' })]))
    expect(r.summary).toMatch(/^1 samples: a 1 .*; d 4 [^;]*$/)
    const other = await p.analyze({ ...request([sample(0, { z: 1 })]), deviceId: 'd2' })
    expect(other.summary).toContain('z 1')
  })
})
