import type Database from 'better-sqlite3'
import { publicKeySha256 } from '../../certs/index.ts'
import type { DeviceFilter } from './registry-store.ts'

export const iso = (d: Date): string => d.toISOString()

/**
 * The WHERE clause of a device list, count or bulk selection: every criterion ANDed. Group, label and
 * expiry are ranges over an index (devices_group, device_labels_key_value, certificates_active_not_after);
 * status and tier, with few values each, are checked on the way through the ids.
 */
export function deviceWhere(filter: Omit<DeviceFilter, 'after' | 'limit'>): { where: string[]; params: unknown[] } {
  const where: string[] = []
  const params: unknown[] = []
  if (filter.group !== undefined) {
    where.push('group_name = ?')
    params.push(filter.group)
  }
  if (filter.status !== undefined) {
    where.push('status = ?')
    params.push(filter.status)
  }
  if (filter.tier !== undefined) {
    where.push('tier = ?')
    params.push(filter.tier)
  }
  for (const [key, value] of Object.entries(filter.labels ?? {})) {
    where.push('id IN (SELECT device_id FROM device_labels WHERE key = ? AND value = ?)')
    params.push(key, value)
  }
  if (filter.certificateExpiresBefore !== undefined) {
    where.push("id IN (SELECT device_id FROM certificates WHERE status = 'active' AND not_after < ?)")
    params.push(filter.certificateExpiresBefore.toISOString())
  }
  return { where, params }
}

/** Migration 8 adds certificates.key_sha256: fill it in for the certificates issued before, from their PEM, a page at a time. */
export function backfillKeySha256(db: Database.Database): void {
  const page = db.prepare('SELECT serial, pem FROM certificates WHERE key_sha256 IS NULL AND serial > ? ORDER BY serial LIMIT 1000')
  const update = db.prepare('UPDATE certificates SET key_sha256 = ? WHERE serial = ?')
  let after = ''
  for (;;) {
    const rows = page.all(after) as { serial: string; pem: string }[]
    for (const row of rows) {
      const key = keyOf(row.pem)
      if (key !== null) update.run(key, row.serial)
    }
    if (rows.length < 1000) return
    after = rows[rows.length - 1]?.serial ?? after
  }
}

function keyOf(pem: string): string | null {
  try {
    return publicKeySha256(pem)
  } catch {
    return null // not a certificate we can read: it binds no key
  }
}
