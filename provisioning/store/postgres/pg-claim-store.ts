import { ClaimExists, DeviceExists } from '../../errors.ts'
import type { ClaimedDevice, ClaimRecord, ClaimStore, TokenState } from '../claim-store.ts'
import type { PgDatabase } from './pg-database.ts'
import { isUniqueViolation } from './pg-failure.ts'
import { toClaim, toClaimedDevice } from '../record-rows.ts'

/**
 * ClaimStore on the registry's PostgreSQL database (constructed by PgRegistryStore). As on SQLite, a
 * duplicate claim (unique_violation, SQLSTATE 23505) is GH_CLAIM_EXISTS and a device recorded twice
 * GH_DEVICE_EXISTS (test/contract/claim-store.contract.ts).
 */
export class PgClaimStore implements ClaimStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  async insert(c: ClaimRecord, tokenHashes: readonly string[]): Promise<void> {
    try {
      await this.#insert(c, tokenHashes)
    } catch (err) {
      if (isUniqueViolation(err)) throw new ClaimExists(c.id, { cause: err })
      throw err
    }
  }

  async #insert(c: ClaimRecord, tokenHashes: readonly string[]): Promise<void> {
    await this.#db.transaction(async () => {
      await this.#db.query(
        `INSERT INTO claims (id, group_name, tier, max_uses, uses, expires_at, id_pattern, allowed_ids, tokens_required, status,
           revoked_at, serial, fingerprint, not_after, created_at, created_by, certificate_pem)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
        [
          c.id,
          c.group,
          c.tier,
          c.maxUses,
          c.uses,
          c.expiresAt,
          c.idPattern,
          c.allowedIds === null ? null : JSON.stringify(c.allowedIds),
          c.tokensRequired,
          c.status,
          c.revokedAt,
          c.serial,
          c.fingerprint,
          c.notAfter,
          c.createdAt,
          c.createdBy,
          c.certificatePem,
        ],
      )
      for (const hash of tokenHashes) await this.#db.query('INSERT INTO claim_tokens (claim_id, token_hash) VALUES ($1, $2)', [c.id, hash])
    })
  }

  async get(id: string): Promise<ClaimRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM claims WHERE id = $1', [id])
    return r && toClaim(r)
  }

  async getByFingerprint(fingerprint: string): Promise<ClaimRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM claims WHERE fingerprint = $1', [fingerprint])
    return r && toClaim(r)
  }

  async list(): Promise<ClaimRecord[]> {
    return (await this.#db.query('SELECT * FROM claims ORDER BY created_at, id')).map(toClaim)
  }

  async revoke(id: string, at: Date): Promise<void> {
    await this.#db.transaction(() =>
      this.#db.execute("UPDATE claims SET status = 'revoked', revoked_at = $1 WHERE id = $2 AND status = 'active'", [at, id]),
    )
  }

  async addUse(id: string): Promise<void> {
    await this.#db.transaction(() => this.#db.execute('UPDATE claims SET uses = uses + 1 WHERE id = $1', [id]))
  }

  async tokenState(claimId: string, tokenHash: string): Promise<TokenState> {
    const [r] = await this.#db.query('SELECT used_at FROM claim_tokens WHERE claim_id = $1 AND token_hash = $2', [claimId, tokenHash])
    return r === undefined ? 'unknown' : r.used_at == null ? 'unused' : 'used'
  }

  async useToken(claimId: string, tokenHash: string, deviceId: string, at: Date): Promise<void> {
    await this.#db.transaction(() =>
      this.#db.execute('UPDATE claim_tokens SET used_at = $1, device_id = $2 WHERE claim_id = $3 AND token_hash = $4 AND used_at IS NULL', [
        at,
        deviceId,
        claimId,
        tokenHash,
      ]),
    )
  }

  async recordDevice(d: ClaimedDevice): Promise<void> {
    try {
      await this.#recordDevice(d)
    } catch (err) {
      if (isUniqueViolation(err)) throw new DeviceExists(d.deviceId, d.deviceId, { cause: err })
      throw err
    }
  }

  async #recordDevice(d: ClaimedDevice): Promise<void> {
    await this.#db.transaction(() =>
      this.#db.execute('INSERT INTO claim_devices (device_id, claim_id, serial, key_sha256, created_at) VALUES ($1, $2, $3, $4, $5)', [
        d.deviceId,
        d.claimId,
        d.serial,
        d.keySha256,
        d.createdAt,
      ]),
    )
  }

  async getDevice(deviceId: string): Promise<ClaimedDevice | undefined> {
    const [r] = await this.#db.query('SELECT * FROM claim_devices WHERE device_id = $1', [deviceId])
    return r && toClaimedDevice(r)
  }

  async deviceIdWithKey(keySha256: string): Promise<string | undefined> {
    const [r] = await this.#db.query('SELECT device_id FROM claim_devices WHERE key_sha256 = $1 LIMIT 1', [keySha256])
    return r === undefined ? undefined : String(r.device_id)
  }
}
