/**
 * A device's sensor model: what a small industrial sensor (a pump, a motor) reports. Pure: the only
 * inputs are the random source and the time given to `next`, so tests inject a seeded one.
 *
 * - temperature (°C): a per-device base, a slow mean-reverting drift, and noise;
 * - humidity (%): the same shape, kept within 0..100;
 * - vibration (mm/s RMS): a base, noise, never below 0;
 * - now and then (`anomalyRate` per reading) an anomaly: a vibration spike (4-8x), or a temperature
 *   jump of 12-20 °C, for that one reading.
 */

/** A source of uniform numbers in [0, 1), like Math.random. */
export type RandomSource = () => number

export interface TelemetryReading {
  seq: number
  ts: string
  temperature: number
  humidity: number
  vibration: number
}

export type MetricName = 'temperature' | 'humidity' | 'vibration'
export const METRICS: readonly MetricName[] = Object.freeze(['temperature', 'humidity', 'vibration'])

export interface TelemetryModelOptions {
  /** chance that one reading carries an anomaly. Default 0.01 */
  anomalyRate?: number
  /** overrides of the per-device bases (otherwise drawn from the random source) */
  base?: Partial<Record<MetricName, number>>
}

export interface TelemetryModel {
  /** the next reading, stamped with `now` */
  next(now: Date): TelemetryReading
  /** which metric the last reading's anomaly was on, or null */
  readonly lastAnomaly: MetricName | null
  /** anomalies injected so far */
  readonly anomalies: number
}

/** mulberry32: a small, fast, seedable PRNG (for reproducible fleets: `--seed`, tests). */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A standard normal draw (Box-Muller). */
export function gaussian(random: RandomSource): number {
  const u = Math.max(random(), 1e-12)
  const v = random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

const round2 = (x: number) => Math.round(x * 100) / 100
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x))

/** Mean-reverting random walk (Ornstein-Uhlenbeck, one step): drifts slowly, never runs away. */
function driftStep(drift: number, random: RandomSource, reversion: number, step: number): number {
  return drift * (1 - reversion) + step * gaussian(random)
}

export function createTelemetryModel(random: RandomSource = Math.random, options: TelemetryModelOptions = {}): TelemetryModel {
  const anomalyRate = options.anomalyRate ?? 0.01
  if (!(anomalyRate >= 0 && anomalyRate <= 1)) throw new RangeError(`anomalyRate must be within 0..1, not ${anomalyRate}`)
  const base = {
    temperature: options.base?.temperature ?? 20 + random() * 8,
    humidity: options.base?.humidity ?? 35 + random() * 25,
    vibration: options.base?.vibration ?? 1.5 + random() * 2.5,
  }
  const drift = { temperature: 0, humidity: 0 }
  let seq = 0
  let anomalies = 0
  let lastAnomaly: MetricName | null = null

  return {
    get lastAnomaly() {
      return lastAnomaly
    },
    get anomalies() {
      return anomalies
    },
    next(now) {
      drift.temperature = driftStep(drift.temperature, random, 0.02, 0.15)
      drift.humidity = driftStep(drift.humidity, random, 0.02, 0.4)
      let temperature = base.temperature + drift.temperature + 0.1 * gaussian(random)
      const humidity = clamp(base.humidity + drift.humidity + 0.5 * gaussian(random), 0, 100)
      let vibration = Math.max(0, base.vibration + 0.15 * gaussian(random))
      lastAnomaly = null
      if (random() < anomalyRate) {
        anomalies++
        if (random() < 0.7) {
          vibration *= 4 + 4 * random()
          lastAnomaly = 'vibration'
        } else {
          temperature += 12 + 8 * random()
          lastAnomaly = 'temperature'
        }
      }
      return {
        seq: ++seq,
        ts: now.toISOString(),
        temperature: round2(temperature),
        humidity: round2(humidity),
        vibration: round2(vibration),
      }
    },
  }
}
