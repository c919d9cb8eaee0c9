import type { DeviceFilter } from '../registry-store.ts'

/** node-postgres reads timestamptz as a Date, bigint as a string, boolean as a boolean. */
export { date, dateOrNull, toAudit, toCertificate, toDevice } from '../record-rows.ts'
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

/** The WHERE clause of a device list or count (as sqlite-device-queries.ts' deviceWhere): every criterion ANDed. */
export function deviceWhere(filter: Omit<DeviceFilter, 'after' | 'limit'>, p: Params): string[] {
  const where: string[] = []
  if (filter.group !== undefined) where.push(`group_name = ${p.add(filter.group)}`)
  if (filter.status !== undefined) where.push(`status = ${p.add(filter.status)}`)
  if (filter.tier !== undefined) where.push(`tier = ${p.add(filter.tier)}`)
  for (const [key, value] of Object.entries(filter.labels ?? {}))
    where.push(`id IN (SELECT device_id FROM device_labels WHERE key = ${p.add(key)} AND value = ${p.add(value)})`)
  if (filter.certificateExpiresBefore !== undefined)
    where.push(
      `id IN (SELECT device_id FROM certificates WHERE status = 'active' AND not_after < ${p.add(filter.certificateExpiresBefore)})`,
    )
  return where
}

export const whereClause = (where: readonly string[]): string => (where.length ? `WHERE ${where.join(' AND ')}` : '')
