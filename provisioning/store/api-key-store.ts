/**
 * API keys of apps. Only a SHA-256 of each key's secret part is stored; the key itself is shown once,
 * when it is created. Implemented by SqliteApiKeyStore on the registry's SQLite connection, so a key's
 * creation or revocation and its audit entry share one transaction (RegistryStore.transaction).
 */
export interface ApiKeyRecord {
  /** the public part of the key (`ghk_<id>_<secret>`): 12 lowercase hex characters */
  id: string
  /** unique, chosen by the operator; the audit actor is `apikey:<name>` */
  name: string
  /** SHA-256 of the secret part, lowercase hex */
  secretHash: string
  scopes: string[]
  createdAt: Date
  expiresAt: Date | null
  lastUsedAt: Date | null
  revokedAt: Date | null
  /** after a rotation: SHA-256 of the old secret, which works until previousSecretUntil */
  previousSecretHash: string | null
  previousSecretUntil: Date | null
}

export interface ApiKeyStore {
  /** throws GH_API_KEY_EXISTS when the name (or id) is taken */
  insert(record: ApiKeyRecord): Promise<void>
  getById(id: string): Promise<ApiKeyRecord | undefined>
  getByName(name: string): Promise<ApiKeyRecord | undefined>
  /** all keys, oldest first */
  list(): Promise<ApiKeyRecord[]>
  revoke(id: string, at: Date): Promise<void>
  /** a new secret; the current one becomes the previous, working until `until` */
  rotate(id: string, secretHash: string, previousSecretHash: string, until: Date): Promise<void>
  touchLastUsed(id: string, at: Date): Promise<void>
}
