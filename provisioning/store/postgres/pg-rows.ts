import type { CrlReason } from '../../../certs/index.ts'
import type { AuditEntry, CertificateRecord, DeviceFilter, DeviceRecord, DeviceStatus } from '../registry-store.ts'
import type { Row } from './pg-database.ts'

/** node-postgres reads timestamptz as a Date, bigint as a string, boolean as a boolean. */
export const date = (v: unknown): Date => (v instanceof Date ? new Date(v.getTime()) : new Date(String(v)))
export const dateOrNull = (v: unknown): Date | null => (v == null ? null : date(v))
export const num = (v: unknown): number => Number(v)
export const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v))
export const json = (v: unknown): Record<string, unknown> => JSON.parse(String(v)) as Record<string, unknown>

export function toDevice(r: Row): DeviceRecord {
  return {
    id: String(r.id),
    group: (r.group_name as string | null) ?? null,
    tier: String(r.tier),
    status: r.status as DeviceStatus,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  }
}

export function toCertificate(r: Row): CertificateRecord {
  return {
    serial: String(r.serial),
    deviceId: String(r.device_id),
    fingerprint: String(r.fingerprint),
    notBefore: date(r.not_before),
    notAfter: date(r.not_after),
    status: r.status as CertificateRecord['status'],
    supersededAt: dateOrNull(r.superseded_at),
    revokedAt: dateOrNull(r.revoked_at),
    revocationReason: (r.revocation_reason as CrlReason | null) ?? null,
    pem: String(r.pem),
    createdAt: date(r.created_at),
    ...(r.key_sha256 != null && { keySha256: String(r.key_sha256) }),
  }
}

export function toAudit(r: Row): AuditEntry {
  return {
    id: num(r.id),
    at: date(r.at),
    actor: String(r.actor),
    action: String(r.action),
    subject: String(r.subject),
    details: json(r.details),
  }
}

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
