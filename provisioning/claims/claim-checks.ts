import { createHash } from 'node:crypto'
import { assertDeviceId } from '../../certs/index.ts'
import { ClaimExpired, ClaimIdNotAllowed, ClaimRevoked, ClaimTokenInvalid, ClaimUsedUp, CsrKeyInUse, DeviceExists } from '../errors.ts'
import type { ClaimRecord, TokenState } from '../store/claim-store.ts'

/** What a claim request is checked against: the claim as stored now and the request as parsed. */
export interface ClaimCheckInput {
  claim: ClaimRecord
  deviceId: string
  token: string | undefined
  now: Date
  tokenState(hash: string): TokenState
  deviceExists(id: string): boolean
  /** SHA-256 of the CSR's public key (SPKI DER) */
  keySha256: string
  /** the device a claim already provisioned with this key, if any */
  deviceWithKey(keySha256: string): string | undefined
}

/** One rule about a claim request: throws one coded error, or returns (docs/conventions.md §5). */
export type ClaimCheck = (input: ClaimCheckInput) => void

export const hashClaimToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex')

export const claimIsActive: ClaimCheck = ({ claim }) => {
  if (claim.status === 'revoked') throw new ClaimRevoked(claim.id)
}

export const claimIsNotExpired: ClaimCheck = ({ claim, now }) => {
  if (now.getTime() >= claim.expiresAt.getTime()) throw new ClaimExpired(claim.id, claim.expiresAt.toISOString())
}

export const claimIsNotUsedUp: ClaimCheck = ({ claim }) => {
  if (claim.maxUses !== null && claim.uses >= claim.maxUses) throw new ClaimUsedUp(claim.id, claim.maxUses)
}

export const deviceIdIsValid: ClaimCheck = ({ deviceId }) => {
  assertDeviceId(deviceId)
}

/** The id fully matches --id-pattern and is listed in --allow-ids, when the claim has them. */
export const deviceIdIsAllowed: ClaimCheck = ({ claim, deviceId }) => {
  if (claim.idPattern !== null && !new RegExp(`^(?:${claim.idPattern})$`).test(deviceId)) {
    throw new ClaimIdNotAllowed(claim.id, deviceId, `it does not match ${claim.idPattern}`)
  }
  if (claim.allowedIds !== null && !claim.allowedIds.includes(deviceId)) {
    throw new ClaimIdNotAllowed(claim.id, deviceId, 'it is not on the list of allowed ids')
  }
}

export const tokenIsUnused: ClaimCheck = ({ claim, token, tokenState }) => {
  if (!claim.tokensRequired) return
  if (token === undefined) throw new ClaimTokenInvalid(claim.id, 'missing')
  const state = tokenState(hashClaimToken(token))
  if (state !== 'unused') throw new ClaimTokenInvalid(claim.id, state)
}

export const deviceIsNew: ClaimCheck = ({ deviceId, deviceExists }) => {
  if (deviceExists(deviceId)) throw new DeviceExists(deviceId, deviceId)
}

/** One key pair, one device: a key already bound to a device (by a claim) is refused for another. */
export const keyIsUnbound: ClaimCheck = ({ deviceId, keySha256, deviceWithKey }) => {
  const holder = deviceWithKey(keySha256)
  if (holder !== undefined && holder !== deviceId) throw new CsrKeyInUse()
}

/** Before a repeat is recognised: a revoked or expired claim answers nothing, not even a repeat. */
export const claimChecksBeforeRepeat: readonly ClaimCheck[] = [claimIsActive, claimIsNotExpired, deviceIdIsValid]

/** For a new device, in order; run again inside the transaction that consumes the use. */
export const claimChecksForNewDevice: readonly ClaimCheck[] = [
  claimIsNotUsedUp,
  deviceIdIsAllowed,
  tokenIsUnused,
  deviceIsNew,
  keyIsUnbound,
]

export type ClaimUnusable = 'claim-revoked' | 'claim-expired' | 'claim-used-up'

/** Why a claim can provision nothing now (a claim session is refused at CONNECT), or null: the same checks as its requests. */
export function claimUnusable(claim: ClaimRecord, now: Date): ClaimUnusable | null {
  const input = { claim, now } as ClaimCheckInput // these three checks read only the claim and the time
  const checks: [ClaimCheck, ClaimUnusable][] = [
    [claimIsActive, 'claim-revoked'],
    [claimIsNotExpired, 'claim-expired'],
    [claimIsNotUsedUp, 'claim-used-up'],
  ]
  for (const [check, reason] of checks) {
    try {
      check(input)
    } catch {
      return reason
    }
  }
  return null
}

export function runClaimChecks(checks: readonly ClaimCheck[], input: ClaimCheckInput): void {
  for (const check of checks) check(input)
}
