import type { CrlReason } from '../../certs/index.ts'
import type { AiUsageRecord } from './ai-usage-store.ts'
import type { ApiKeyRecord } from './api-key-store.ts'
import type { AppCertificateRecord, AppRecord } from './app-store.ts'
import type { ClaimedDevice, ClaimRecord } from './claim-store.ts'
import type { DashboardSessionRecord } from './dashboard-session-store.ts'
import type { LimitsRecord } from './limits-store.ts'
import type { RouteRecord } from './route-store.ts'
import type { AuditEntry, CertificateRecord, CredentialRecord, DeviceFilter, DeviceRecord, DeviceStatus } from './registry-store.ts'

/**
 * The registry's rows as records, for both engines: SQLite gives dates as ISO text and numbers as numbers,
 * node-postgres gives timestamptz as a Date and bigint as a string. One mapping, so the two stores cannot drift.
 */
export type Row = Record<string, unknown>

export const date = (v: unknown): Date => (v instanceof Date ? new Date(v.getTime()) : new Date(String(v)))
export const dateOrNull = (v: unknown): Date | null => (v == null ? null : date(v))
export const num = (v: unknown): number => Number(v)
export const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v))
/** a JSON column: text on both engines */
export const json = (v: unknown): Record<string, unknown> => JSON.parse(String(v)) as Record<string, unknown>
/** SQLite stores a boolean as 1/0, PostgreSQL as a boolean */
const bool = (v: unknown): boolean => v === true || v === 1
const strings = (v: unknown): string[] => JSON.parse(String(v)) as string[]

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

/** The columns CREDENTIAL_SQL selects, on both engines (the certificate's, then its device's as device_*) */
export const CREDENTIAL_COLUMNS = `c.serial, c.device_id, c.status, c.not_before, c.not_after, c.superseded_at,
  d.status AS device_status, d.tier AS device_tier, d.group_name AS device_group
  FROM certificates c JOIN devices d ON d.id = c.device_id`

export function toCredential(r: Row): CredentialRecord {
  return {
    serial: String(r.serial),
    deviceId: String(r.device_id),
    status: r.status as CertificateRecord['status'],
    notBefore: date(r.not_before),
    notAfter: date(r.not_after),
    supersededAt: dateOrNull(r.superseded_at),
    device: { status: r.device_status as DeviceStatus, tier: String(r.device_tier), group: (r.device_group as string | null) ?? null },
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

// The sibling stores' rows (the registry's database holds them too), for both engines.

export const toUsage = (r: Row): AiUsageRecord => ({
  deviceId: String(r.device_id),
  day: String(r.day),
  requests: num(r.requests),
  tokens: num(r.tokens),
})

export const toApiKey = (r: Row): ApiKeyRecord => ({
  id: String(r.id),
  name: String(r.name),
  secretHash: String(r.secret_hash),
  scopes: strings(r.scopes),
  createdAt: date(r.created_at),
  expiresAt: dateOrNull(r.expires_at),
  lastUsedAt: dateOrNull(r.last_used_at),
  revokedAt: dateOrNull(r.revoked_at),
  previousSecretHash: r.previous_secret_hash == null ? null : String(r.previous_secret_hash),
  previousSecretUntil: dateOrNull(r.previous_secret_until),
})

export const toApp = (r: Row): AppRecord => ({
  name: String(r.name),
  groups: r.groups == null ? null : strings(r.groups),
  classes: strings(r.classes),
  status: r.status === 'revoked' ? 'revoked' : 'active',
  createdAt: date(r.created_at),
  createdBy: String(r.created_by),
  revokedAt: dateOrNull(r.revoked_at),
})

export const toAppCertificate = (r: Row): AppCertificateRecord => ({
  serial: String(r.serial),
  appName: String(r.app_name),
  fingerprint: String(r.fingerprint),
  keySha256: String(r.key_sha256),
  notAfter: date(r.not_after),
  status: r.status === 'revoked' ? 'revoked' : 'active',
  pem: String(r.pem),
  createdAt: date(r.created_at),
  revokedAt: dateOrNull(r.revoked_at),
})

export const toClaim = (r: Row): ClaimRecord => ({
  id: String(r.id),
  group: String(r.group_name),
  tier: String(r.tier),
  maxUses: numOrNull(r.max_uses),
  uses: num(r.uses),
  expiresAt: date(r.expires_at),
  idPattern: (r.id_pattern as string | null) ?? null,
  allowedIds: r.allowed_ids == null ? null : strings(r.allowed_ids),
  tokensRequired: bool(r.tokens_required),
  status: r.status as ClaimRecord['status'],
  revokedAt: dateOrNull(r.revoked_at),
  serial: String(r.serial),
  fingerprint: String(r.fingerprint),
  notAfter: date(r.not_after),
  certificatePem: (r.certificate_pem as string | null) ?? null,
  createdAt: date(r.created_at),
  createdBy: String(r.created_by),
})

export const toClaimedDevice = (r: Row): ClaimedDevice => ({
  deviceId: String(r.device_id),
  claimId: String(r.claim_id),
  serial: String(r.serial),
  keySha256: String(r.key_sha256),
  createdAt: date(r.created_at),
})

export const toLimits = (key: string, r: Row): LimitsRecord => ({
  key,
  limits: json(r.limits),
  updatedAt: date(r.updated_at),
  updatedBy: String(r.updated_by),
})

export const toRoute = (r: Row): RouteRecord => ({
  id: String(r.id),
  url: String(r.url),
  group: r.grp == null ? null : String(r.grp),
  secret: String(r.secret),
  batchSize: num(r.batch_size),
  batchMs: num(r.batch_ms),
  queueMax: num(r.queue_max),
  redact: bool(r.redact),
  consent: bool(r.consent),
  createdAt: date(r.created_at),
  createdBy: String(r.created_by),
})

export const toDashboardSession = (r: Row): DashboardSessionRecord => ({
  idHash: String(r.id_hash),
  keyId: String(r.key_id),
  keyName: String(r.key_name),
  createdAt: date(r.created_at),
  lastSeenAt: date(r.last_seen_at),
})
