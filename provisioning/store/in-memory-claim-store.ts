import { ClaimExists, DeviceExists } from '../errors.ts'
import type { ClaimedDevice, ClaimRecord, ClaimStore, TokenState } from './claim-store.ts'

const clone = <T>(v: T): T => structuredClone(v)

/**
 * The test double of SqliteClaimStore. It has no transactions of its own: the claim service writes to it
 * only after every check inside RegistryStore.transaction has passed and the device is committed.
 */
export class InMemoryClaimStore implements ClaimStore {
  readonly #claims = new Map<string, ClaimRecord>()
  readonly #tokens = new Map<string, { usedAt: Date | null; deviceId: string | null }>()
  readonly #devices = new Map<string, ClaimedDevice>()

  async insert(claim: ClaimRecord, tokenHashes: readonly string[]): Promise<void> {
    const clash =
      this.#claims.has(claim.id) || [...this.#claims.values()].some((c) => c.serial === claim.serial || c.fingerprint === claim.fingerprint)
    if (clash) throw new ClaimExists(claim.id)
    this.#claims.set(claim.id, clone(claim))
    for (const h of tokenHashes) this.#tokens.set(`${claim.id}/${h}`, { usedAt: null, deviceId: null })
  }

  async get(id: string): Promise<ClaimRecord | undefined> {
    const c = this.#claims.get(id)
    return c && clone(c)
  }

  async getByFingerprint(fingerprint: string): Promise<ClaimRecord | undefined> {
    const c = [...this.#claims.values()].find((c) => c.fingerprint === fingerprint)
    return c && clone(c)
  }

  async list(): Promise<ClaimRecord[]> {
    return clone([...this.#claims.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1)))
  }

  async revoke(id: string, at: Date): Promise<void> {
    const c = this.#claims.get(id)
    if (c && c.status === 'active') Object.assign(c, { status: 'revoked', revokedAt: new Date(at) })
  }

  async addUse(id: string): Promise<void> {
    const c = this.#claims.get(id)
    if (c) c.uses++
  }

  async tokenState(claimId: string, tokenHash: string): Promise<TokenState> {
    const t = this.#tokens.get(`${claimId}/${tokenHash}`)
    return t === undefined ? 'unknown' : t.usedAt === null ? 'unused' : 'used'
  }

  async useToken(claimId: string, tokenHash: string, deviceId: string, at: Date): Promise<void> {
    const t = this.#tokens.get(`${claimId}/${tokenHash}`)
    if (t && t.usedAt === null) Object.assign(t, { usedAt: new Date(at), deviceId })
  }

  async recordDevice(device: ClaimedDevice): Promise<void> {
    if (this.#devices.has(device.deviceId)) throw new DeviceExists(device.deviceId, device.deviceId)
    this.#devices.set(device.deviceId, clone(device))
  }

  async getDevice(deviceId: string): Promise<ClaimedDevice | undefined> {
    const d = this.#devices.get(deviceId)
    return d && clone(d)
  }

  async deviceIdWithKey(keySha256: string): Promise<string | undefined> {
    for (const d of this.#devices.values()) if (d.keySha256 === keySha256) return d.deviceId
    return undefined
  }
}
