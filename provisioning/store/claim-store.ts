/**
 * Claims (zero-touch provisioning by claim certificate, docs/device-lifecycle.md). Implemented by
 * SqliteClaimStore on the registry's connection (so a claim's use and the device it provisions commit in
 * one RegistryStore.transaction) and by InMemoryClaimStore for unit tests.
 */
export type ClaimStatus = 'active' | 'revoked'

export interface ClaimRecord {
  /** `^[a-z0-9][a-z0-9-]{2,40}$`; the certificate CN is `claim:<id>` */
  id: string
  group: string
  tier: string
  /** null: unlimited */
  maxUses: number | null
  uses: number
  /** when it stops provisioning (its certificate stays valid 30 days longer) */
  expiresAt: Date
  idPattern: string | null
  allowedIds: string[] | null
  tokensRequired: boolean
  status: ClaimStatus
  revokedAt: Date | null
  serial: string
  fingerprint: string
  /** the claim certificate's notAfter */
  notAfter: Date
  /** the claim certificate (for its issuer's CRL once revoked); null for claims made before it was kept */
  certificatePem: string | null
  createdAt: Date
  createdBy: string
}

/** A device a claim provisioned: a repeat of its request with the same key gets the same certificate. */
export interface ClaimedDevice {
  deviceId: string
  claimId: string
  serial: string
  /** SHA-256 of the device key's SPKI DER, lowercase hex */
  keySha256: string
  createdAt: Date
}

export type TokenState = 'unused' | 'used' | 'unknown'

export interface ClaimStore {
  /** the claim and the SHA-256 (hex) of each of its one-time tokens */
  insert(claim: ClaimRecord, tokenHashes: readonly string[]): Promise<void>
  get(id: string): Promise<ClaimRecord | undefined>
  getByFingerprint(fingerprint: string): Promise<ClaimRecord | undefined>
  /** oldest first */
  list(): Promise<ClaimRecord[]>
  revoke(id: string, at: Date): Promise<void>
  /** one more use */
  addUse(id: string): Promise<void>
  tokenState(claimId: string, tokenHash: string): Promise<TokenState>
  useToken(claimId: string, tokenHash: string, deviceId: string, at: Date): Promise<void>
  recordDevice(device: ClaimedDevice): Promise<void>
  getDevice(deviceId: string): Promise<ClaimedDevice | undefined>
  /** the device a claim provisioned with this key (SHA-256 of its SPKI DER), if any */
  deviceIdWithKey(keySha256: string): Promise<string | undefined>
}
