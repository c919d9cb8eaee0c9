import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { identityFromCertificate, parseCertificatePem } from '../../../certs/index.ts'
import { createChangeFeed, createRegistryDirectory } from '../../../provisioning/index.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { deviceKey, enrollmentFixture, json } from '../../helpers/enrollment-fixture.ts'
import { openssl } from '../../helpers/run-cli.ts'
import { makeTempPemDir } from '../../helpers/test-ca.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

async function sqliteFixture(opts: { dir?: string } = {}) {
  const dir = opts.dir ?? tempDir()
  const f = await enrollmentFixture({ dir })
  onTestFinished(() => f.close())
  return { ...f, dir }
}

describe('SqliteClaimStore', () => {
  it('keeps claims, hashed tokens and claimed devices across reopening (migration 4)', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim({ maxUses: 5, idPattern: '^p-[0-9]+$', allowedIds: ['p-1', 'p-2'], tokens: 2 })
    f.close()
    const reopened = new SqliteRegistryStore(join(f.dir, 'gatehouse.db'))
    onTestFinished(() => reopened.close())
    const claim = await reopened.claims.get(created.claim.id)
    expect(claim).toEqual(created.claim)
    expect((await reopened.claims.getByFingerprint(created.claim.fingerprint))?.id).toBe(created.claim.id)
    expect((await reopened.claims.list()).map((c) => c.id)).toEqual([created.claim.id])
    const { hashClaimToken } = await import('../../../provisioning/claims/claim-checks.ts')
    expect(await reopened.claims.tokenState(created.claim.id, hashClaimToken(created.tokens[0]!))).toBe('unused')
    expect(await reopened.claims.tokenState(created.claim.id, created.tokens[0]!)).toBe('unknown')
  })
})

describe('enrollment over SQLite', () => {
  it('provisions a device whose certificate verifies against the answered chain', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim()
    const key = await deviceKey()
    const answer = await f.enrollment.claim(f.context(created), json({ deviceId: 'pump-0042', csr: await key.csr('pump-0042') }))
    expect(answer).toMatchObject({ ok: true, deviceId: 'pump-0042' })
    expect(await f.store.getDevice('pump-0042')).toMatchObject({ group: 'pumps', status: 'active' })
    const pem = makeTempPemDir()
    onTestFinished(pem.cleanup)
    const at = String(Math.floor(f.clock.now().getTime() / 1000))
    const verify = await openssl([
      'verify',
      '-attime',
      at,
      '-CAfile',
      pem.write('ca.pem', answer.chain as string),
      pem.write('cert.pem', answer.certificate as string),
    ])
    expect(verify.code, verify.stderr).toBe(0)
    // and the claim certificate verifies too, as a client certificate of the issuing CA
    const claimVerify = await openssl([
      'verify',
      '-attime',
      at,
      '-purpose',
      'sslclient',
      '-CAfile',
      pem.write('ca2.pem', created.chainPem),
      pem.write('claim.pem', created.certificatePem),
    ])
    expect(claimVerify.code, claimVerify.stderr).toBe(0)
  })

  it('never provisions more than max uses under concurrent requests, from one or two connections', async () => {
    const f = await sqliteFixture()
    const other = await sqliteFixture({ dir: f.dir })
    const created = await f.createClaim({ maxUses: 3 })
    const requests = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const key = await deviceKey()
        const id = `pump-${String(i).padStart(4, '0')}`
        const service = i % 2 === 0 ? f.enrollment : other.enrollment
        return service.claim(f.context(created), json({ deviceId: id, csr: await key.csr(id) }))
      }),
    )
    expect(requests.filter((a) => a.ok)).toHaveLength(3)
    expect(requests.filter((a) => !a.ok).map((a) => (a.error as { code: string }).code)).toEqual(Array(5).fill('GH_CLAIM_USED_UP'))
    expect((await f.claims.get(created.claim.id))?.uses).toBe(3)
    expect(await f.store.countDevices({ group: 'pumps' })).toBe(3)
  })

  it('lets each token provision one device, even when two requests carry it at once', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim({ tokens: 1 })
    const [a, b] = await Promise.all(
      ['pump-a', 'pump-b'].map(async (id) =>
        f.enrollment.claim(f.context(created), json({ deviceId: id, csr: await (await deviceKey()).csr(id), token: created.tokens[0] })),
      ),
    )
    expect([a!.ok, b!.ok].sort()).toEqual([false, true])
    expect(((a!.ok ? b : a)!.error as { code: string }).code).toBe('GH_CLAIM_TOKEN_INVALID')
    expect(await f.store.countDevices()).toBe(1)
  })

  it('answers the same request sent twice at once with one certificate', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim({ maxUses: 1 })
    const key = await deviceKey()
    const payload = json({ deviceId: 'pump-1', csr: await key.csr('pump-1') })
    const [a, b] = await Promise.all([f.enrollment.claim(f.context(created), payload), f.enrollment.claim(f.context(created), payload)])
    expect(a).toMatchObject({ ok: true })
    expect(b).toMatchObject({ ok: true, serial: a!.serial })
    expect((await f.claims.get(created.claim.id))?.uses).toBe(1)
  })

  it('renews in the window; the old certificate stays valid for the overlap, then the directory refuses it', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim()
    const key = await deviceKey()
    const first = await f.enrollment.claim(f.context(created), json({ deviceId: 'pump-1', csr: await key.csr('pump-1') }))
    const ctx = { deviceId: 'pump-1', serial: first.serial as string, remoteAddress: null }
    const next = await deviceKey()
    const early = await f.enrollment.renew(ctx, json({ csr: await next.csr('pump-1') }))
    expect(early).toMatchObject({ ok: false, error: { code: 'GH_RENEWAL_TOO_EARLY', renewAfter: first.renewAfter } })
    f.clock.set(first.renewAfter as string)
    const renewed = await f.enrollment.renew(ctx, json({ csr: await next.csr('pump-1') }))
    expect(renewed).toMatchObject({ ok: true, previousValidUntil: new Date(f.clock.now().getTime() + 86_400_000).toISOString() })
    expect(await f.store.getCertificate(first.serial as string)).toMatchObject({ status: 'superseded' })

    const feed = await createChangeFeed({ store: f.store, clock: f.clock, log: pino({ level: 'silent' }) })
    const directory = createRegistryDirectory({
      store: f.store,
      feed,
      clock: f.clock,
      log: pino({ level: 'silent' }),
      claims: f.claimService,
    })
    const oldIdentity = await identityFromCertificate(parseCertificatePem(first.certificate as string))
    expect(await directory.lookup(oldIdentity)).toMatchObject({
      kind: 'active',
      validUntil: new Date(renewed.previousValidUntil as string),
    })
    const newIdentity = await identityFromCertificate(parseCertificatePem(renewed.certificate as string))
    expect(await directory.lookup(newIdentity)).toMatchObject({ kind: 'active', validUntil: new Date(renewed.notAfter as string) })
    f.clock.advance('25h')
    expect(await directory.lookup(oldIdentity)).toMatchObject({ kind: 'refused', reason: 'superseded' })
  })

  it('looks claim certificates up by fingerprint and serial, and refuses a revoked one', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim()
    const feed = await createChangeFeed({ store: f.store, clock: f.clock, log: pino({ level: 'silent' }) })
    const directory = createRegistryDirectory({
      store: f.store,
      feed,
      clock: f.clock,
      log: pino({ level: 'silent' }),
      claims: f.claimService,
    })
    const identity = await identityFromCertificate(parseCertificatePem(created.certificatePem))
    expect(identity.commonName).toBe(`claim:${created.claim.id}`)
    expect(await directory.lookupClaim(identity, created.claim.id)).toEqual({
      kind: 'claim',
      claimId: created.claim.id,
      serial: created.claim.serial,
    })
    expect(await directory.lookupClaim(identity, 'other-claim')).toMatchObject({ kind: 'refused', reason: 'unknown-claim' })
    expect(await directory.lookupClaim({ ...identity, serial: '1234' }, created.claim.id)).toMatchObject({
      kind: 'refused',
      reason: 'unknown-claim',
    })
    await f.claimService.revoke(created.claim.id, 'operator:test')
    await feed.poll()
    expect(await directory.lookupClaim(identity, created.claim.id)).toMatchObject({ kind: 'refused', reason: 'claim-revoked' })
    const key = await deviceKey()
    expect(await f.enrollment.claim(f.context(created), json({ deviceId: 'p-1', csr: await key.csr('p-1') }))).toMatchObject({
      ok: false,
      error: { code: 'GH_CLAIM_REVOKED' },
    })
  })
})
