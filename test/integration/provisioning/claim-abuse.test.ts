import { describe, expect, it, onTestFinished } from 'vitest'
import { DEFAULT_CLAIM_MAX_USES } from '../../../provisioning/claims/claim-service.ts'
import { deviceKey, enrollmentFixture, json } from '../../helpers/enrollment-fixture.ts'
import { openssl } from '../../helpers/run-cli.ts'
import { makeTempPemDir } from '../../helpers/test-ca.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/**
 * Issue 10, "Claims are untrusted input" and "Refusals must not fill the disk": the enrollment service
 * on a real SQLite registry in a temp dir. Bounds are asserted as counts and sizes.
 */
async function sqliteFixture(options: Parameters<typeof enrollmentFixture>[0] = {}) {
  const f = await enrollmentFixture({ dir: tempDir(), ...options })
  onTestFinished(() => f.close())
  return f
}

const codeOf = (answer: Record<string, unknown>): string | undefined => (answer.error as { code?: string } | undefined)?.code

describe('refused claim and renewal requests', () => {
  it('write one capped claim.refused row per claim, code and address per interval, then one with the count suppressed', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim({ maxUses: 5 })
    const payload = json({ deviceId: 'x'.repeat(60_000), csr: 'not a csr' })
    const answers = []
    for (let i = 0; i < 50; i++) answers.push(await f.enrollment.claim(f.context(created), payload))
    expect(answers.map(codeOf)).toEqual(Array(50).fill('GH_DEVICE_ID_INVALID'))
    const rows = await f.store.listAudit({ action: 'claim.refused' })
    expect(rows).toHaveLength(1)
    expect(Buffer.byteLength(JSON.stringify(rows[0]))).toBeLessThan(1024)
    expect(rows[0]?.details.deviceId).toBe(`${'x'.repeat(128)}…[+59872 chars]`)

    f.clock.advance('61s')
    await f.enrollment.claim(f.context(created), payload)
    expect((await f.store.listAudit({ action: 'claim.refused' })).map((r) => r.details.suppressed)).toEqual([49, 0])
  })

  it('write one renewal.refused row per device, code and address per interval', async () => {
    const f = await sqliteFixture()
    const issued = await f.authority.createDevice({ id: 'pump-7', group: 'pumps' }, 'operator:test')
    const context = { deviceId: 'pump-7', serial: issued.serial, remoteAddress: '127.0.0.1' }
    for (let i = 0; i < 30; i++) {
      const answer = await f.enrollment.renew(context, json({ csr: 'not a csr' }))
      expect(answer.ok).toBe(false)
    }
    expect(await f.store.listAudit({ action: 'renewal.refused' })).toHaveLength(1)
  })
})

describe('claims are bounded', () => {
  it(`a claim created with no bound provisions at most ${DEFAULT_CLAIM_MAX_USES} devices`, async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim()
    expect(created.claim.maxUses).toBe(DEFAULT_CLAIM_MAX_USES)
    const codes: (string | undefined)[] = []
    for (let i = 0; i <= DEFAULT_CLAIM_MAX_USES; i++) {
      const id = `pump-${String(i).padStart(4, '0')}`
      codes.push(codeOf(await f.enrollment.claim(f.context(created), json({ deviceId: id, csr: await (await deviceKey()).csr(id) }))))
      f.clock.advance('10s')
    }
    expect(codes).toEqual([...Array(DEFAULT_CLAIM_MAX_USES).fill(undefined), 'GH_CLAIM_USED_UP'])
    expect(await f.store.countDevices({ group: 'pumps' })).toBe(DEFAULT_CLAIM_MAX_USES)
  })

  it('refuses a public key already bound to another device', async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim({ maxUses: 40 })
    const key = await deviceKey()
    const first = await f.enrollment.claim(f.context(created), json({ deviceId: 'pump-0001', csr: await key.csr('pump-0001') }))
    expect(first.ok).toBe(true)
    const codes = []
    for (let i = 2; i < 6; i++) {
      const id = `pump-000${i}`
      codes.push(codeOf(await f.enrollment.claim(f.context(created), json({ deviceId: id, csr: await key.csr(id) }))))
    }
    expect(codes).toEqual(Array(4).fill('GH_CSR_KEY_IN_USE'))
    expect(await f.store.countDevices()).toBe(1)
    expect((await f.claims.get(created.claim.id))?.uses).toBe(1)
  })

  it('refuses a renewal whose key a claim bound to another device', async () => {
    const f = await sqliteFixture({ renewalWindow: 1 })
    const created = await f.createClaim({ maxUses: 5 })
    const key = await deviceKey()
    expect((await f.enrollment.claim(f.context(created), json({ deviceId: 'pump-0001', csr: await key.csr('pump-0001') }))).ok).toBe(true)
    const other = await f.authority.createDevice({ id: 'pump-0002', group: 'pumps' }, 'operator:test')
    const answer = await f.enrollment.renew(
      { deviceId: 'pump-0002', serial: other.serial, remoteAddress: '127.0.0.1' },
      json({ csr: await key.csr('pump-0002') }),
    )
    expect(codeOf(answer)).toBe('GH_CSR_KEY_IN_USE')
    expect(await f.store.listCertificates('pump-0002')).toHaveLength(1)
  })

  it('rate limits requests per claim, across sessions and addresses, answering GH_CLAIM_RATE_LIMITED', async () => {
    const f = await sqliteFixture({ claimRequestRate: { ratePerSecond: 0.1, burst: 5 } })
    const created = await f.createClaim({ maxUses: 40 })
    const codes = []
    for (let i = 0; i < 12; i++) {
      const context = { ...f.context(created, `nonce-${String(i).padStart(16, '0')}`), remoteAddress: `10.0.0.${i}` }
      codes.push(codeOf(await f.enrollment.claim(context, json({ deviceId: `pump-${i}`, csr: 'not a csr' }))))
    }
    expect(codes.filter((c) => c === 'GH_CLAIM_RATE_LIMITED')).toHaveLength(7)
    expect(codes.slice(0, 5).every((c) => c !== 'GH_CLAIM_RATE_LIMITED')).toBe(true)
    f.clock.advance('10s')
    expect(codeOf(await f.enrollment.claim(f.context(created), json({ deviceId: 'pump-x', csr: 'not a csr' })))).not.toBe(
      'GH_CLAIM_RATE_LIMITED',
    )
  })
})

describe('revoked claims on the CRL', () => {
  it("lists a revoked claim's certificate on its issuer's CRL, so openssl -crl_check refuses it", async () => {
    const f = await sqliteFixture()
    const created = await f.createClaim({ maxUses: 5 })
    const kept = await f.createClaim({ maxUses: 5 })
    expect((await f.authority.currentCrl()).entries).toBe(0)
    await f.claimService.revoke(created.claim.id, 'operator:test')
    const crl = await f.authority.currentCrl()
    expect(crl.entries).toBe(1)

    const pem = makeTempPemDir()
    onTestFinished(pem.cleanup)
    const at = String(Math.floor(f.clock.now().getTime() / 1000))
    const args = (cert: string) => [
      'verify',
      '-attime',
      at,
      '-crl_check',
      '-CAfile',
      pem.write('ca.pem', created.chainPem),
      '-CRLfile',
      pem.write('crl.pem', crl.pem),
      pem.write('claim.pem', cert),
    ]
    const revoked = await openssl(args(created.certificatePem))
    expect(revoked.code).not.toBe(0)
    expect(revoked.stdout + revoked.stderr).toContain('certificate revoked')
    expect((await openssl(args(kept.certificatePem))).code).toBe(0)
  })
})
