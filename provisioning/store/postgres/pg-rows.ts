/** node-postgres reads timestamptz as a Date, bigint as a string, boolean as a boolean. */
export { date, dateOrNull, deviceWhere, toAudit, toCertificate, toDevice } from '../record-rows.ts'
export const num = (v: unknown): number => Number(v)
export const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v))
export const json = (v: unknown): Record<string, unknown> => JSON.parse(String(v)) as Record<string, unknown>

/** Numbered parameters ($1, $2, ...) for a statement built from parts. */
export class Params {
  readonly values: unknown[] = []
  add(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

export const whereClause = (where: readonly string[]): string => (where.length ? `WHERE ${where.join(' AND ')}` : '')
