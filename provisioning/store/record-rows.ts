import type { CrlReason } from '../../certs/index.ts'
import type { AuditEntry, CertificateRecord, DeviceFilter, DeviceRecord, DeviceStatus } from './registry-store.ts'

/**
 * The registry's rows as records, for both engines: SQLite gives dates as ISO text and numbers as numbers,
 * node-postgres gives timestamptz as a Date and bigint as a string. One mapping, so the two stores cannot drift.
 */
export type Row = Record<string, unknown>

export const date = (v: unknown): Date => (v instanceof Date ? new Date(v.getTime()) : new Date(String(v)))
export const dateOrNull = (v: unknown): Date | null => (v == null ? null : date(v))

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
    id: Number(r.id),
    at: date(r.at),
    actor: String(r.actor),
    action: String(r.action),
    subject: String(r.subject),
    details: JSON.parse(String(r.details)) as Record<string, unknown>,
  }
}

/**
 * The WHERE criteria of a device list, count or bulk selection, for both engines: every criterion ANDed.
 * `bind` takes a value and returns its placeholder (SQLite `?`, PostgreSQL `$n`). Group, label and expiry are
 * ranges over an index (devices_group, device_labels_key_value, certificates_active_not_after); status and
 * tier, with few values each, are checked on the way through the ids.
 */
export function deviceWhere(filter: Omit<DeviceFilter, 'after' | 'limit'>, bind: (value: unknown) => string): string[] {
  const where: string[] = []
  if (filter.group !== undefined) where.push(`group_name = ${bind(filter.group)}`)
  if (filter.status !== undefined) where.push(`status = ${bind(filter.status)}`)
  if (filter.tier !== undefined) where.push(`tier = ${bind(filter.tier)}`)
  for (const [key, value] of Object.entries(filter.labels ?? {}))
    where.push(`id IN (SELECT device_id FROM device_labels WHERE key = ${bind(key)} AND value = ${bind(value)})`)
  if (filter.certificateExpiresBefore !== undefined)
    where.push(
      `id IN (SELECT device_id FROM certificates WHERE status = 'active' AND not_after < ${bind(filter.certificateExpiresBefore)})`,
    )
  return where
}
