import { describe, expect, it } from 'vitest'
import {
  claimChecksBeforeRepeat,
  claimChecksForNewDevice,
  hashClaimToken,
  type ClaimCheckInput,
} from '../../../../provisioning/claims/claim-checks.ts'
import type { ClaimRecord } from '../../../../provisioning/store/claim-store.ts'

const claim: ClaimRecord = {
  id: 'pumps-abcdefgh',
  group: 'pumps',
  tier: 'standard',
  maxUses: 2,
  uses: 0,
  expiresAt: new Date('2026-03-08T00:00:00Z'),
  idPattern: null,
  allowedIds: null,
  tokensRequired: false,
  status: 'active',
  revokedAt: null,
  serial: '1a',
  fingerprint: 'ff'.repeat(32),
  notAfter: new Date('2026-04-07T00:00:00Z'),
  certificatePem: null,
  createdAt: new Date('2026-03-01T00:00:00Z'),
  createdBy: 'operator:test',
}

function input(over: Partial<Omit<ClaimCheckInput, 'claim'>> & { claim?: Partial<ClaimRecord> } = {}): ClaimCheckInput {
  return {
    deviceId: 'pump-0001',
    token: undefined,
    now: new Date('2026-03-02T00:00:00Z'),
    tokenState: (hash) => (hash === hashClaimToken('good') ? 'unused' : hash === hashClaimToken('spent') ? 'used' : 'unknown'),
    deviceExists: (id) => id === 'pump-0009',
    keySha256: 'key-of-pump-0001',
    deviceWithKey: (key) => (key === 'key-of-pump-0009' ? 'pump-0009' : undefined),
    ...over,
    claim: { ...claim, ...over.claim },
  }
}

const run = (i: ClaimCheckInput) => {
  for (const check of [...claimChecksBeforeRepeat, ...claimChecksForNewDevice]) check(i)
}

describe('claim checks', () => {
  it.each([
    ['ok/plain', input(), undefined],
    ['fail/revoked', input({ claim: { status: 'revoked' } }), 'GH_CLAIM_REVOKED'],
    ['fail/expired', input({ now: new Date('2026-03-08T00:00:00Z') }), 'GH_CLAIM_EXPIRED'],
    ['fail/used-up', input({ claim: { uses: 2 } }), 'GH_CLAIM_USED_UP'],
    ['ok/unlimited', input({ claim: { maxUses: null, uses: 5000 } }), undefined],
    ['fail/bad-id', input({ deviceId: 'pump/1' }), 'GH_DEVICE_ID_INVALID'],
    ['ok/pattern', input({ claim: { idPattern: '^pump-[0-9]{4}$' } }), undefined],
    ['fail/pattern', input({ deviceId: 'pump-12345', claim: { idPattern: 'pump-[0-9]{4}' } }), 'GH_CLAIM_ID_NOT_ALLOWED'],
    ['ok/allowed', input({ claim: { allowedIds: ['pump-0001'] } }), undefined],
    ['fail/not-allowed', input({ claim: { allowedIds: ['pump-0002'] } }), 'GH_CLAIM_ID_NOT_ALLOWED'],
    ['ok/token', input({ token: 'good', claim: { tokensRequired: true } }), undefined],
    ['fail/token-missing', input({ claim: { tokensRequired: true } }), 'GH_CLAIM_TOKEN_INVALID'],
    ['fail/token-used', input({ token: 'spent', claim: { tokensRequired: true } }), 'GH_CLAIM_TOKEN_INVALID'],
    ['fail/token-unknown', input({ token: 'other', claim: { tokensRequired: true } }), 'GH_CLAIM_TOKEN_INVALID'],
    ['fail/device-exists', input({ deviceId: 'pump-0009' }), 'GH_DEVICE_EXISTS'],
    ['fail/key-of-another-device', input({ keySha256: 'key-of-pump-0009' }), 'GH_CSR_KEY_IN_USE'],
    ['ok/key-of-this-device', input({ deviceId: 'pump-0009', keySha256: 'key-of-pump-0009', deviceExists: () => false }), undefined],
  ])('%s', (_name, i, code) => {
    if (code === undefined) expect(() => run(i)).not.toThrow()
    else expect(() => run(i)).toThrow(expect.objectContaining({ code }))
  })
})
