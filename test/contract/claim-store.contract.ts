import { describe, expect, it } from 'vitest'
import type { ClaimedDevice, ClaimRecord, ClaimStore } from '../../provisioning/store/claim-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')

export const claim = (id: string, over: Partial<ClaimRecord> = {}): ClaimRecord => ({
  id,
  group: 'pumps',
  tier: 'standard',
  maxUses: 10,
  uses: 0,
  expiresAt: new Date('2026-02-01T00:00:00.000Z'),
  idPattern: '^pump-[0-9]+$',
  allowedIds: null,
  tokensRequired: false,
  status: 'active',
  revokedAt: null,
  serial: Buffer.from(id).toString('hex'),
  fingerprint: `fp-${id}`,
  notAfter: new Date('2026-03-03T00:00:00.000Z'),
  certificatePem: `-----BEGIN CERTIFICATE-----\n${id}\n-----END CERTIFICATE-----\n`,
  createdAt: t0,
  createdBy: 'operator:test',
  ...over,
})

const claimed = (deviceId: string, claimId: string, over: Partial<ClaimedDevice> = {}): ClaimedDevice => ({
  deviceId,
  claimId,
  serial: `0${deviceId.length}`,
  keySha256: `key-${deviceId}`,
  createdAt: t0,
  ...over,
})

/**
 * The behaviour every ClaimStore must have (like registry-store.contract.ts): SqliteClaimStore runs it in
 * integration/provisioning/, PgClaimStore in integration/postgres/, InMemoryClaimStore in unit/. `make`
 * returns a fresh store with no claims, on a registry that holds the devices named (a claimed device is a
 * registry device, as the claim service records it). A duplicate is the coded error every engine maps it
 * to (GH_CLAIM_EXISTS, GH_DEVICE_EXISTS), never an engine's own code.
 */
export function claimStoreContract(name: string, make: (deviceIds: readonly string[]) => ClaimStore | Promise<ClaimStore>): void {
  describe(`${name} (ClaimStore contract)`, () => {
    it('stores a claim and reads it back with every field, by id and by fingerprint', async () => {
      const store = await make([])
      const full = claim('batch-1', {
        maxUses: null,
        allowedIds: ['pump-1', 'pump-2'],
        idPattern: null,
        tokensRequired: true,
        certificatePem: null,
      })
      await store.insert(full, [])
      expect(await store.get('batch-1')).toEqual(full)
      expect(await store.getByFingerprint('fp-batch-1')).toEqual(full)
      expect(await store.get('nope')).toBeUndefined()
      expect(await store.getByFingerprint('fp-nope')).toBeUndefined()
    })

    it('refuses a second claim with the same id, serial or fingerprint', async () => {
      const store = await make([])
      await store.insert(claim('batch-1'), [])
      await expect(store.insert(claim('batch-1', { serial: 'aa', fingerprint: 'fp-other' }), [])).rejects.toMatchObject({
        code: 'GH_CLAIM_EXISTS',
        message: expect.stringContaining("claim 'batch-1'"),
      })
      await expect(store.insert(claim('batch-2', { serial: claim('batch-1').serial }), ['t1'])).rejects.toMatchObject({
        code: 'GH_CLAIM_EXISTS',
      })
      await expect(store.insert(claim('batch-3', { fingerprint: 'fp-batch-1' }), [])).rejects.toMatchObject({ code: 'GH_CLAIM_EXISTS' })
      expect((await store.list()).map((c) => c.id)).toEqual(['batch-1'])
      expect(await store.tokenState('batch-2', 't1')).toBe('unknown')
    })

    it('lists claims oldest first, by id within the same instant', async () => {
      const store = await make([])
      await store.insert(claim('ccc', { createdAt: new Date('2026-01-03T00:00:00.000Z') }), [])
      await store.insert(claim('bbb', { createdAt: t0 }), [])
      await store.insert(claim('aaa', { createdAt: t0 }), [])
      expect((await store.list()).map((c) => c.id)).toEqual(['aaa', 'bbb', 'ccc'])
    })

    it('hands out copies: changing a returned claim changes nothing stored', async () => {
      const store = await make([])
      await store.insert(claim('batch-1', { allowedIds: ['pump-1'] }), [])
      const got = (await store.get('batch-1'))!
      got.uses = 99
      got.allowedIds!.push('pump-2')
      expect(await store.get('batch-1')).toEqual(claim('batch-1', { allowedIds: ['pump-1'] }))
    })

    it('revokes an active claim once, keeping the first revokedAt, and ignores an unknown id', async () => {
      const store = await make([])
      await store.insert(claim('batch-1'), [])
      const at = new Date('2026-01-10T00:00:00.000Z')
      await store.revoke('batch-1', at)
      await store.revoke('batch-1', new Date('2026-01-20T00:00:00.000Z'))
      await store.revoke('ghost', at)
      expect(await store.get('batch-1')).toMatchObject({ status: 'revoked', revokedAt: at })
      expect(await store.get('ghost')).toBeUndefined()
    })

    it('counts uses one at a time', async () => {
      const store = await make([])
      await store.insert(claim('batch-1', { uses: 2 }), [])
      await store.addUse('batch-1')
      await store.addUse('batch-1')
      await store.addUse('ghost')
      expect((await store.get('batch-1'))?.uses).toBe(4)
    })

    it('knows each one-time token of a claim as unused, then used, and no other claim’s', async () => {
      const store = await make([])
      await store.insert(claim('batch-1'), ['h1', 'h2'])
      await store.insert(claim('batch-2'), ['h3'])
      expect(await store.tokenState('batch-1', 'h1')).toBe('unused')
      expect(await store.tokenState('batch-1', 'h3')).toBe('unknown')
      expect(await store.tokenState('ghost', 'h1')).toBe('unknown')
      await store.useToken('batch-1', 'h1', 'pump-1', t0)
      await store.useToken('batch-1', 'h1', 'pump-2', t0) // used already: stays with pump-1
      expect(await store.tokenState('batch-1', 'h1')).toBe('used')
      expect(await store.tokenState('batch-1', 'h2')).toBe('unused')
    })

    it('records each device a claim provisioned once, found by id and by key', async () => {
      const store = await make(['pump-1'])
      await store.insert(claim('batch-1'), [])
      await store.recordDevice(claimed('pump-1', 'batch-1'))
      expect(await store.getDevice('pump-1')).toEqual(claimed('pump-1', 'batch-1'))
      expect(await store.getDevice('pump-2')).toBeUndefined()
      expect(await store.deviceIdWithKey('key-pump-1')).toBe('pump-1')
      expect(await store.deviceIdWithKey('key-other')).toBeUndefined()
      await expect(store.recordDevice(claimed('pump-1', 'batch-1', { keySha256: 'key-again' }))).rejects.toMatchObject({
        code: 'GH_DEVICE_EXISTS',
      })
      expect(await store.deviceIdWithKey('key-again')).toBeUndefined()
    })
  })
}
