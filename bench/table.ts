/** Prints rows as an aligned text table. */
export function printTable(rows: (string | number)[][]): void {
  const text = rows.map((r) => r.map(String))
  const widths = text[0]?.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length))) ?? []
  for (const r of text) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '))
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN
}

/** Formats a number for a table: '-' for missing, otherwise `digits` decimals. */
export function fmt(value: number | null | undefined, digits = 0): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits)
}

/** Reads a positive whole number from the environment, or the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number >= 1, not '${raw}'`)
  return n
}

/** Brokers in forward order on odd repetitions and reversed on even ones (docs/conventions.md §29). */
export function alternate<T>(items: readonly T[], rep: number): T[] {
  return rep % 2 ? [...items] : [...items].reverse()
}

/**
 * The median of paired ratios: for each repetition, metric(subject) / metric(reference) from the same
 * repetition, then the median over repetitions. Null when no repetition has both.
 */
export function medianPairedRatio<R extends { rep: number }>(subject: R[], reference: R[], metric: (r: R) => number): number | null {
  const ratios: number[] = []
  for (const s of subject) {
    const ref = reference.find((r) => r.rep === s.rep)
    if (!ref) continue
    const a = metric(s)
    const b = metric(ref)
    if (Number.isFinite(a) && Number.isFinite(b) && b !== 0) ratios.push(a / b)
  }
  return ratios.length ? median(ratios) : null
}
