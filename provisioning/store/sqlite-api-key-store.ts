import type Database from 'better-sqlite3'
import type { TransactionGate } from './transaction-gate.ts'
import { ApiKeyExists } from '../errors.ts'
import type { ApiKeyRecord, ApiKeyStore } from './api-key-store.ts'
import { toApiKey, type Row } from './record-rows.ts'

/** ApiKeyStore on the registry's SQLite connection (constructed by SqliteRegistryStore). */
export class SqliteApiKeyStore implements ApiKeyStore {
  readonly #s

  readonly #gate: TransactionGate

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#gate = gate
    this.#s = {
      insert: db.prepare(
        `INSERT INTO api_keys (id, name, secret_hash, scopes, created_at, expires_at, last_used_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getById: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
      getByName: db.prepare('SELECT * FROM api_keys WHERE name = ?'),
      list: db.prepare('SELECT * FROM api_keys ORDER BY created_at, name'),
      revoke: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touch: db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?'),
      rotate: db.prepare('UPDATE api_keys SET secret_hash = ?, previous_secret_hash = ?, previous_secret_until = ? WHERE id = ?'),
    }
  }

  insert(k: ApiKeyRecord): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#s.insert.run(
          k.id,
          k.name,
          k.secretHash,
          JSON.stringify(k.scopes),
          k.createdAt.toISOString(),
          k.expiresAt?.toISOString() ?? null,
          k.lastUsedAt?.toISOString() ?? null,
          k.revokedAt?.toISOString() ?? null,
        )
      } catch (err) {
        if (String((err as { code?: unknown }).code).startsWith('SQLITE_CONSTRAINT')) throw new ApiKeyExists(k.name, { cause: err })
        throw err
      }
    })
  }

  getById(id: string): Promise<ApiKeyRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getById.get(id) as Row | undefined
      return r && toApiKey(r)
    })
  }

  getByName(name: string): Promise<ApiKeyRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getByName.get(name) as Row | undefined
      return r && toApiKey(r)
    })
  }

  list(): Promise<ApiKeyRecord[]> {
    return this.#gate.run(() => {
      return (this.#s.list.all() as Row[]).map(toApiKey)
    })
  }

  revoke(id: string, at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#s.revoke.run(at.toISOString(), id)
    })
  }

  rotate(id: string, secretHash: string, previousSecretHash: string, until: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#s.rotate.run(secretHash, previousSecretHash, until.toISOString(), id)
    })
  }

  touchLastUsed(id: string, at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#s.touch.run(at.toISOString(), id)
    })
  }
}
