import { ApiKeyExists } from '../../errors.ts'
import type { ApiKeyRecord, ApiKeyStore } from '../api-key-store.ts'
import type { PgDatabase } from './pg-database.ts'
import { isUniqueViolation } from './pg-failure.ts'
import { toApiKey } from '../record-rows.ts'

/** ApiKeyStore on the registry's PostgreSQL database (constructed by PgRegistryStore). */
export class PgApiKeyStore implements ApiKeyStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  #write(sql: string, params: readonly unknown[]): Promise<number> {
    return this.#db.transaction(() => this.#db.execute(sql, params))
  }

  async insert(k: ApiKeyRecord): Promise<void> {
    try {
      await this.#write(
        `INSERT INTO api_keys (id, name, secret_hash, scopes, created_at, expires_at, last_used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [k.id, k.name, k.secretHash, JSON.stringify(k.scopes), k.createdAt, k.expiresAt, k.lastUsedAt, k.revokedAt],
      )
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiKeyExists(k.name, { cause: err })
      throw err
    }
  }

  async getById(id: string): Promise<ApiKeyRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM api_keys WHERE id = $1', [id])
    return r && toApiKey(r)
  }

  async getByName(name: string): Promise<ApiKeyRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM api_keys WHERE name = $1', [name])
    return r && toApiKey(r)
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await this.#db.query('SELECT * FROM api_keys ORDER BY created_at, name')).map(toApiKey)
  }

  async revoke(id: string, at: Date): Promise<void> {
    await this.#write('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])
  }

  async rotate(id: string, secretHash: string, previousSecretHash: string, until: Date): Promise<void> {
    await this.#write('UPDATE api_keys SET secret_hash = $1, previous_secret_hash = $2, previous_secret_until = $3 WHERE id = $4', [
      secretHash,
      previousSecretHash,
      until,
      id,
    ])
  }

  async touchLastUsed(id: string, at: Date): Promise<void> {
    await this.#write('UPDATE api_keys SET last_used_at = $1 WHERE id = $2', [at, id])
  }
}
