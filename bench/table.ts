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
