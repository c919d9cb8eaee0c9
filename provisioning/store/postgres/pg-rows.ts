/** node-postgres reads timestamptz as a Date, bigint as a string, boolean as a boolean. */
export {
  CREDENTIAL_COLUMNS,
  date,
  dateOrNull,
  deviceWhere,
  json,
  num,
  numOrNull,
  toAudit,
  toCertificate,
  toCredential,
  toDevice,
} from '../record-rows.ts'

/** Numbered parameters ($1, $2, ...) for a statement built from parts. */
export class Params {
  readonly values: unknown[] = []
  add(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

export const whereClause = (where: readonly string[]): string => (where.length ? `WHERE ${where.join(' AND ')}` : '')
