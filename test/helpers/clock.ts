import type { Clock } from '../../certs/index.ts'

/** A Clock that only moves when a test moves it (docs/conventions.md §13). */
export interface FixedClock extends Clock {
  /** moves forward by a duration: a number of ms, or '250ms', '61s', '5m', '3h', '2d' */
  advance(by: Duration): Date
  /** jumps to a date (forwards or backwards) */
  set(to: Date | string): Date
}

export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

export function durationMs(d: Duration): number {
  if (typeof d === 'number') return d
  const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(d)
  if (m === null) throw new Error(`bad duration '${d}': use e.g. 250ms, 61s, 5m, 3h, 2d or a number of ms`)
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
}

export function fixedClock(start: Date | string = '2026-01-01T00:00:00Z'): FixedClock {
  let t = toMs(start)
  return {
    now: () => new Date(t),
    advance(by) {
      t += durationMs(by)
      return new Date(t)
    },
    set(to) {
      t = toMs(to)
      return new Date(t)
    },
  }
}

function toMs(d: Date | string): number {
  const ms = typeof d === 'string' ? Date.parse(d) : d.getTime()
  if (Number.isNaN(ms)) throw new Error(`bad date '${String(d)}'`)
  return ms
}

/** Real time plus an offset the test moves: for a running Gatehouse whose TLS checks real time. */
export interface OffsetClock extends Clock {
  advance(by: Duration): Date
}

export function offsetClock(): OffsetClock {
  let offset = 0
  return {
    now: () => new Date(Date.now() + offset),
    advance(by) {
      offset += durationMs(by)
      return new Date(Date.now() + offset)
    },
  }
}
