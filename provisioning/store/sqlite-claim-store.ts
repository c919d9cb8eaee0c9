import type Database from 'better-sqlite3'
import { ClaimExists, DeviceExists } from '../errors.ts'
import { isSqliteDuplicate } from './store-failure.ts'
import type { TransactionGate } from './transaction-gate.ts'
import type { ClaimedDevice, ClaimRecord, ClaimStore, TokenState } from './claim-store.ts'
import { toClaim, toClaimedDevice, type Row } from './record-rows.ts'

/**
 * ClaimStore on the registry's SQLite connection (constructed by SqliteRegistryStore). A duplicate claim is
 * GH_CLAIM_EXISTS, a device recorded twice GH_DEVICE_EXISTS, on every engine (test/contract/claim-store.contract.ts).
 */
export class SqliteClaimStore implements ClaimStore {
  readonly #s

  readonly #gate: TransactionGate

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#gate = gate
    this.#s = {
      insert: db.prepare(
        `INSERT INTO claims (id, group_name, tier, max_uses, uses, expires_at, id_pattern, allowed_ids, tokens_required, status,
           revoked_at, serial, fingerprint, not_after, created_at, created_by, certificate_pem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertToken: db.prepare('INSERT INTO claim_tokens (claim_id, token_hash) VALUES (?, ?)'),
      get: db.prepare('SELECT * FROM claims WHERE id = ?'),
      getByFp: db.prepare('SELECT * FROM claims WHERE fingerprint = ?'),
      list: db.prepare('SELECT * FROM claims ORDER BY created_at, id'),
      revoke: db.prepare("UPDATE claims SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'active'"),
      addUse: db.prepare('UPDATE claims SET uses = uses + 1 WHERE id = ?'),
      token: db.prepare('SELECT used_at FROM claim_tokens WHERE claim_id = ? AND token_hash = ?'),
      useToken: db.prepare('UPDATE claim_tokens SET used_at = ?, device_id = ? WHERE claim_id = ? AND token_hash = ? AND used_at IS NULL'),
      recordDevice: db.prepare('INSERT INTO claim_devices (device_id, claim_id, serial, key_sha256, created_at) VALUES (?, ?, ?, ?, ?)'),
      getDevice: db.prepare('SELECT * FROM claim_devices WHERE device_id = ?'),
      deviceIdWithKey: db.prepare('SELECT device_id FROM claim_devices WHERE key_sha256 = ? LIMIT 1'),
    }
  }

  insert(c: ClaimRecord, tokenHashes: readonly string[]): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#insert(c, tokenHashes)
      } catch (err) {
        if (isSqliteDuplicate(err)) throw new ClaimExists(c.id, { cause: err })
        throw err
      }
    })
  }

  #insert(c: ClaimRecord, tokenHashes: readonly string[]): void {
    this.#s.insert.run(
      c.id,
      c.group,
      c.tier,
      c.maxUses,
      c.uses,
      c.expiresAt.toISOString(),
      c.idPattern,
      c.allowedIds === null ? null : JSON.stringify(c.allowedIds),
      c.tokensRequired ? 1 : 0,
      c.status,
      c.revokedAt?.toISOString() ?? null,
      c.serial,
      c.fingerprint,
      c.notAfter.toISOString(),
      c.createdAt.toISOString(),
      c.createdBy,
      c.certificatePem,
    )
    for (const hash of tokenHashes) this.#s.insertToken.run(c.id, hash)
  }

  get(id: string): Promise<ClaimRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.get.get(id) as Row | undefined
      return r && toClaim(r)
    })
  }

  getByFingerprint(fingerprint: string): Promise<ClaimRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getByFp.get(fingerprint) as Row | undefined
      return r && toClaim(r)
    })
  }

  list(): Promise<ClaimRecord[]> {
    return this.#gate.run(() => {
      return (this.#s.list.all() as Row[]).map(toClaim)
    })
  }

  revoke(id: string, at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#s.revoke.run(at.toISOString(), id)
    })
  }

  addUse(id: string): Promise<void> {
    return this.#gate.run(() => {
      this.#s.addUse.run(id)
    })
  }

  tokenState(claimId: string, tokenHash: string): Promise<TokenState> {
    return this.#gate.run(() => {
      const r = this.#s.token.get(claimId, tokenHash) as Row | undefined
      return r === undefined ? 'unknown' : r.used_at == null ? 'unused' : 'used'
    })
  }

  useToken(claimId: string, tokenHash: string, deviceId: string, at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#s.useToken.run(at.toISOString(), deviceId, claimId, tokenHash)
    })
  }

  recordDevice(d: ClaimedDevice): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#s.recordDevice.run(d.deviceId, d.claimId, d.serial, d.keySha256, d.createdAt.toISOString())
      } catch (err) {
        if (isSqliteDuplicate(err)) throw new DeviceExists(d.deviceId, d.deviceId, { cause: err })
        throw err
      }
    })
  }

  getDevice(deviceId: string): Promise<ClaimedDevice | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.getDevice.get(deviceId) as Row | undefined
      return r && toClaimedDevice(r)
    })
  }

  deviceIdWithKey(keySha256: string): Promise<string | undefined> {
    return this.#gate.run(() => {
      return (this.#s.deviceIdWithKey.get(keySha256) as { device_id: string } | undefined)?.device_id
    })
  }
}
