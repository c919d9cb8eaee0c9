import { describe, expect, it } from 'vitest'
import {
  alertMessage,
  applySettings,
  breaches,
  createCrossingDetector,
  intervalMsOf,
  parseSettingsDocument,
  settingsReport,
  thresholdsOf,
} from '../../../device-sim/device-settings.ts'
import type { TelemetryReading } from '../../../device-sim/telemetry.ts'

const reading = (over: Partial<TelemetryReading> = {}): TelemetryReading => ({
  seq: 1,
  ts: '2026-01-01T00:00:00.000Z',
  temperature: 22,
  humidity: 50,
  vibration: 2,
  ...over,
})

describe('device-sim settings application', () => {
  it('reads a settings document {"version", "settings", "updatedAt"} and nothing else', () => {
    expect(parseSettingsDocument('{"version":3,"settings":{"interval":5},"updatedAt":"2026-01-01T00:00:00Z"}')).toEqual({
      version: 3,
      settings: { interval: 5 },
      updatedAt: '2026-01-01T00:00:00Z',
    })
    expect(parseSettingsDocument(Buffer.from('{"version":1,"settings":{}}'))).toEqual({ version: 1, settings: {} })
    for (const bad of [
      'nope',
      '[]',
      '{"version":"1","settings":{}}',
      '{"version":1.5,"settings":{}}',
      '{"version":1,"settings":[]}',
      '{"settings":{}}',
    ])
      expect(parseSettingsDocument(bad)).toBeNull()
  })

  it('applies a document only when its version is newer than the applied one', () => {
    const v2 = applySettings(null, { version: 2, settings: { interval: 5 } }, 5000)
    expect(v2).toMatchObject({ version: 2, intervalMs: 5000 })
    expect(applySettings(v2, { version: 2, settings: { interval: 1 } }, 5000)).toBeNull()
    expect(applySettings(v2, { version: 1, settings: { interval: 1 } }, 5000)).toBeNull()
    expect(applySettings(v2, { version: 3, settings: { interval: 1 } }, 5000)).toMatchObject({ version: 3, intervalMs: 1000 })
  })

  it('takes `interval` in seconds (0.1 .. 86400) and falls back to the default otherwise', () => {
    expect(intervalMsOf({ interval: 10 }, 5000)).toBe(10_000)
    expect(intervalMsOf({ interval: 0.25 }, 5000)).toBe(250)
    expect(intervalMsOf({}, 5000)).toBe(5000)
    for (const bad of [0, -1, 0.01, 100_000, '10', null, Number.NaN]) expect(intervalMsOf({ interval: bad }, 5000)).toBe(5000)
  })

  it('takes numeric thresholds.<metric>.min/max of the metrics it measures', () => {
    expect(
      thresholdsOf({
        thresholds: { temperature: { max: 30 }, humidity: { min: 20, max: 'x' }, vibration: { min: 0.5, max: 8 }, rpm: { max: 1 } },
      }),
    ).toEqual({
      temperature: { max: 30 },
      humidity: { min: 20 },
      vibration: { min: 0.5, max: 8 },
    })
    expect(thresholdsOf({ thresholds: 5 })).toEqual({})
  })

  it('reports what it applied: {"version", "settings"} as received', () => {
    const applied = applySettings(
      null,
      { version: 7, settings: { interval: 2, thresholds: { temperature: { max: 30 } }, site: 'north' } },
      5000,
    )
    expect(settingsReport(applied!)).toEqual({
      version: 7,
      settings: { interval: 2, thresholds: { temperature: { max: 30 } }, site: 'north' },
    })
  })

  it('finds every threshold a reading is outside of', () => {
    const t = { temperature: { max: 30 }, humidity: { min: 40, max: 60 }, vibration: { max: 4 } }
    expect(breaches(reading(), t)).toEqual([])
    expect(breaches(reading({ temperature: 31, humidity: 39, vibration: 4 }), t)).toEqual([
      { metric: 'temperature', value: 31, bound: 'max', limit: 30 },
      { metric: 'humidity', value: 39, bound: 'min', limit: 40 },
    ])
  })

  it('alerts when a metric crosses out of its bounds, not again while it stays out, and again after it came back', () => {
    const detector = createCrossingDetector()
    const t = { temperature: { max: 30 } }
    expect(detector.check(reading({ temperature: 25 }), t)).toEqual([])
    expect(detector.check(reading({ temperature: 31 }), t)).toHaveLength(1)
    expect(detector.check(reading({ temperature: 32 }), t)).toEqual([])
    expect(detector.check(reading({ temperature: 29 }), t)).toEqual([])
    expect(detector.check(reading({ temperature: 35 }), t)).toHaveLength(1)
    // a new limit is a new crossing
    expect(detector.check(reading({ temperature: 35 }), { temperature: { max: 33 } })).toHaveLength(1)
  })

  it('writes an alert that says what crossed which limit', () => {
    const [c] = breaches(reading({ seq: 9, vibration: 12.5 }), { vibration: { max: 8 } })
    expect(alertMessage(reading({ seq: 9, vibration: 12.5 }), c!)).toEqual({
      type: 'threshold',
      seq: 9,
      ts: '2026-01-01T00:00:00.000Z',
      metric: 'vibration',
      value: 12.5,
      bound: 'max',
      limit: 8,
      message: 'vibration = 12.5 is above its maximum 8',
    })
  })
})
