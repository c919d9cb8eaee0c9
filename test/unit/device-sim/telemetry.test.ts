import { describe, expect, it } from 'vitest'
import { createTelemetryModel, METRICS, seededRandom } from '../../../device-sim/telemetry.ts'

const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i))

describe('device-sim telemetry model', () => {
  it('is reproducible: the same seed gives the same readings', () => {
    const a = createTelemetryModel(seededRandom(7))
    const b = createTelemetryModel(seededRandom(7))
    const c = createTelemetryModel(seededRandom(8))
    const ra = Array.from({ length: 50 }, (_, i) => a.next(at(i)))
    expect(Array.from({ length: 50 }, (_, i) => b.next(at(i)))).toEqual(ra)
    expect(Array.from({ length: 50 }, (_, i) => c.next(at(i)))).not.toEqual(ra)
  })

  it('numbers its readings and stamps them with the time given, as {seq, ts, temperature, humidity, vibration}', () => {
    const model = createTelemetryModel(seededRandom(1))
    const first = model.next(at(0))
    const second = model.next(at(5))
    expect(Object.keys(first).sort()).toEqual(['humidity', 'seq', 'temperature', 'ts', 'vibration'])
    expect(first).toMatchObject({ seq: 1, ts: '2026-01-01T00:00:00.000Z' })
    expect(second).toMatchObject({ seq: 2, ts: '2026-01-01T00:00:05.000Z' })
    for (const m of METRICS) expect(Number.isFinite(first[m])).toBe(true)
  })

  it('stays realistic without anomalies: drifts slowly around its base, humidity within 0..100, vibration >= 0', () => {
    const model = createTelemetryModel(seededRandom(42), { anomalyRate: 0, base: { temperature: 22, humidity: 50, vibration: 2 } })
    const readings = Array.from({ length: 5000 }, (_, i) => model.next(at(i)))
    for (const r of readings) {
      expect(r.temperature).toBeGreaterThan(12)
      expect(r.temperature).toBeLessThan(32)
      expect(r.humidity).toBeGreaterThanOrEqual(0)
      expect(r.humidity).toBeLessThanOrEqual(100)
      expect(r.vibration).toBeGreaterThanOrEqual(0)
      expect(r.vibration).toBeLessThan(3.5)
    }
    // noise: consecutive readings differ, but only a little (slow drift, no jumps)
    const steps = readings.slice(1).map((r, i) => Math.abs(r.temperature - (readings[i]?.temperature ?? 0)))
    expect(Math.max(...steps)).toBeLessThan(2)
    expect(steps.filter((s) => s > 0).length).toBeGreaterThan(4000)
    expect(model.anomalies).toBe(0)
  })

  it('injects anomalies at about anomalyRate: vibration spikes and temperature jumps, for one reading', () => {
    const model = createTelemetryModel(seededRandom(3), { anomalyRate: 0.05, base: { temperature: 22, humidity: 50, vibration: 2 } })
    const spikes = { vibration: 0, temperature: 0 }
    for (let i = 0; i < 4000; i++) {
      const r = model.next(at(i))
      if (model.lastAnomaly === 'vibration') {
        spikes.vibration++
        expect(r.vibration).toBeGreaterThan(5)
      } else if (model.lastAnomaly === 'temperature') {
        spikes.temperature++
        expect(r.temperature).toBeGreaterThan(30)
      } else {
        expect(r.vibration).toBeLessThan(3.5)
      }
    }
    expect(model.anomalies).toBe(spikes.vibration + spikes.temperature)
    expect(model.anomalies).toBeGreaterThan(120) // ~200 expected
    expect(model.anomalies).toBeLessThan(300)
    expect(spikes.vibration).toBeGreaterThan(spikes.temperature)
  })

  it('refuses an anomaly rate outside 0..1', () => {
    expect(() => createTelemetryModel(Math.random, { anomalyRate: 2 })).toThrow(RangeError)
  })
})
