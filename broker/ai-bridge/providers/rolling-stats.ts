/**
 * Running statistics of one metric: mean and variance by Welford's online algorithm (numerically
 * stable, O(1) memory), plus the last `window` points for a least-squares trend.
 */
export class RollingStats {
  n = 0
  mean = 0
  #m2 = 0
  readonly #xs: number[] = []
  readonly #ys: number[] = []
  readonly #window: number

  constructor(window: number) {
    this.#window = window
  }

  get variance(): number {
    return this.n > 1 ? this.#m2 / (this.n - 1) : 0
  }

  get std(): number {
    return Math.sqrt(this.variance)
  }

  /** z-score of `value` against what was seen so far; null while the spread is zero */
  zScore(value: number): number | null {
    const sd = this.std
    return sd > 0 ? (value - this.mean) / sd : null
  }

  push(value: number, atMs: number): void {
    this.n++
    const delta = value - this.mean
    this.mean += delta / this.n
    this.#m2 += delta * (value - this.mean)
    this.#xs.push(atMs)
    this.#ys.push(value)
    if (this.#xs.length > this.#window) {
      this.#xs.shift()
      this.#ys.shift()
    }
  }

  /**
   * Least-squares slope over the trend window: per minute when the points span time, else per sample
   * (several samples with the same timestamp). null with fewer than 3 points.
   */
  slope(): { perMinute: boolean; value: number; span: number } | null {
    const k = this.#ys.length
    if (k < 3) return null
    const first = this.#xs[0] as number
    const last = this.#xs[k - 1] as number
    const perMinute = last > first
    const xs = perMinute ? this.#xs.map((x) => (x - first) / 60_000) : this.#ys.map((_, i) => i)
    const mx = xs.reduce((a, b) => a + b, 0) / k
    const my = this.#ys.reduce((a, b) => a + b, 0) / k
    let num = 0
    let den = 0
    for (let i = 0; i < k; i++) {
      const dx = (xs[i] as number) - mx
      num += dx * ((this.#ys[i] as number) - my)
      den += dx * dx
    }
    if (den === 0) return null
    return { perMinute, value: num / den, span: (xs[k - 1] as number) - (xs[0] as number) }
  }

  last(): number | undefined {
    return this.#ys.at(-1)
  }
}
