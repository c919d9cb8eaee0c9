import type { CrlReason } from '../../certs/index.ts'
import type { AuditEntry, CertificateRecord, DeviceRecord, DeviceStatus } from './registry-store.ts'

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
