/**
 * A latency histogram as plain data: a count per fixed upper bound (seconds) and their sum.
 * observeHistogram() is a short loop and two additions, cheap enough for the broker's paths; a metrics
 * collector reads the numbers at scrape time (docs/architecture.md, "Metrics"). Plain data, so a stats
 * object holding one can be copied with structuredClone. Bounds are fixed at creation, so the series
 * made from it are bounded too.
 */
export interface Histogram {
  /** upper bounds, ascending, in seconds (+Inf is implied) */
  readonly bounds: readonly number[]
  /** observations per bucket (not cumulative): counts[i] <= bounds[i], the last one above every bound */
  readonly counts: number[]
  sum: number
}

/** Provider and database latencies, 1 ms to 30 s. */
export const LATENCY_BOUNDS_SECONDS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export function createHistogram(bounds: readonly number[] = LATENCY_BOUNDS_SECONDS): Histogram {
  return { bounds, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0 }
}

export function observeHistogram(histogram: Histogram, seconds: number): void {
  const { bounds, counts } = histogram
  let i = 0
  while (i < bounds.length && seconds > (bounds[i] as number)) i++
  counts[i] = (counts[i] as number) + 1
  histogram.sum += seconds
}
