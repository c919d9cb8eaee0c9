import type Database from 'better-sqlite3'
import { publicKeySha256 } from '../../certs/index.ts'

export const iso = (d: Date): string => d.toISOString()

/** A bind for the shared device criteria (record-rows.ts deviceWhere): SQLite's `?`, dates as the ISO text stored. */
export function sqliteBinder(): { params: unknown[]; bind: (value: unknown) => string } {
  const params: unknown[] = []
  const bind = (value: unknown): string => {
    params.push(value instanceof Date ? iso(value) : value)
    return '?'
  }
  return { params, bind }
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
