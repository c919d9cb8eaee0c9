import { describe, expect, it } from 'vitest'
import { parseCertificatePem } from '../../../../certs/index.ts'
import { deviceKey, enrollmentFixture, json } from '../../../helpers/enrollment-fixture.ts'

describe('ClaimService', () => {
  it('creates a claim with a claim certificate valid 30 days past its expiry, and hands out the key and tokens once', async () => {
    const { createClaim, claims, store } = await enrollmentFixture()
    const created = await createClaim({ maxUses: 3, expiresInMs: 7 * 86_400_000, tokens: 2 })
    expect(created.claim.id).toMatch(/^pumps-[a-z2-7]{8}$/)
    const cert = parseCertificatePem(created.certificatePem)
    expect(cert.subject).toBe(`CN=claim:${created.claim.id}`)
    expect(cert.notAfter.toISOString()).toBe('2026-04-07T00:00:00.000Z')
    expect(created.privateKeyPem).toContain('BEGIN PRIVATE KEY')
    expect(created.tokens).toHaveLength(2)
    const stored = await claims.get(created.claim.id)
    expect(stored).toMatchObject({ group: 'pumps', maxUses: 3, uses: 0, tokensRequired: true, status: 'active' })
    expect(JSON.stringify(stored)).not.toContain(created.tokens[0])
    expect(await store.listAudit({ action: 'claim.created' })).toHaveLength(1)
  })

  it('revokes a claim with its audit entry and a claim.revoked event, once', async () => {
    const { createClaim, claimService, store } = await enrollmentFixture()
    const created = await createClaim()
    expect(await claimService.revoke(created.claim.id, 'operator:test')).toMatchObject({ status: 'revoked' })
    expect(await store.listAudit({ action: 'claim.revoked', subject: `claim:${created.claim.id}` })).toHaveLength(1)
    expect((await store.eventsAfter(0, 100)).filter((e) => e.type === 'claim.revoked')).toEqual([
      expect.objectContaining({ data: { claimId: created.claim.id } }),
    ])
    await expect(claimService.revoke(created.claim.id, 'operator:test')).rejects.toThrow(
      expect.objectContaining({ code: 'GH_CLAIM_REVOKED' }),
    )
    await expect(claimService.revoke('nope-nope', 'operator:test')).rejects.toThrow(expect.objectContaining({ code: 'GH_CLAIM_NOT_FOUND' }))
  })

  it.each([
    ['fail/group', { group: 'a b' }],
    ['fail/max-uses', { maxUses: 0 }],
    ['fail/pattern', { idPattern: '(' }],
    ['fail/allowed', { allowedIds: ['ok', 'not/ok'] }],
    ['fail/past', { expiresAt: new Date('2020-01-01T00:00:00Z') }],
  ])('%s', async (_name, req) => {
    const { createClaim } = await enrollmentFixture()
    await expect(createClaim(req)).rejects.toMatchObject({ code: 'GH_CLAIM_OPTIONS_INVALID' })
  })
})

describe('EnrollmentService.claim', () => {
  it('provisions a device in the claim group, echoing requestId, with its use consumed and the device traceable', async () => {
    const { createClaim, enrollment, context, store, claims } = await enrollmentFixture()
    const created = await createClaim({ tier: 'gold', maxUses: 1 })
    const key = await deviceKey()
    const answer = await enrollment.claim(
      context(created),
      json({ deviceId: 'pump-0001', csr: await key.csr('pump-0001'), requestId: 'r-1' }),
    )
    expect(answer).toMatchObject({ ok: true, requestId: 'r-1', deviceId: 'pump-0001' })
    expect(await store.getDevice('pump-0001')).toMatchObject({ group: 'pumps', tier: 'gold', status: 'active' })
    expect((await claims.get(created.claim.id))?.uses).toBe(1)
    expect((await store.listAudit({ action: 'device.created', subject: 'pump-0001' }))[0]?.actor).toBe(`claim:${created.claim.id}`)
    expect(await claims.getDevice('pump-0001')).toMatchObject({ claimId: created.claim.id, serial: answer.serial })
    // window: the last third of 30 days
    const [nb, na] = [Date.parse(answer.notBefore as string), Date.parse(answer.notAfter as string)]
    expect(Date.parse(answer.renewAfter as string)).toBe(nb + Math.floor((2 / 3) * (na - nb)))
  })

  it('answers a repeated request with the same key with the same certificate and uses nothing up', async () => {
    const { createClaim, enrollment, context, claims } = await enrollmentFixture()
    const created = await createClaim({ maxUses: 1 })
    const key = await deviceKey()
    const payload = json({ deviceId: 'pump-0001', csr: await key.csr('pump-0001') })
    const first = await enrollment.claim(context(created), payload)
    const again = await enrollment.claim(context(created), payload)
    expect(again).toMatchObject({ ok: true, serial: first.serial, certificate: first.certificate })
    expect((await claims.get(created.claim.id))?.uses).toBe(1)
    const other = await deviceKey()
    expect(await enrollment.claim(context(created), json({ deviceId: 'pump-0001', csr: await other.csr('pump-0001') }))).toMatchObject({
      ok: false,
      error: { code: 'GH_CLAIM_USED_UP' },
    })
  })

  it('refuses with the documented codes and audits refusals as claim.refused, once per code and address per interval', async () => {
    const { createClaim, enrollment, context, store, clock, claimService } = await enrollmentFixture()
    const created = await createClaim({ idPattern: '^pump-[0-9]{4}$', tokens: 1, expiresInMs: 3_600_000 })
    const token = created.tokens[0]
    const key = await deviceKey()
    const ask = async (body: unknown) =>
      (
        (await enrollment.claim(context(created), typeof body === 'string' ? new Uint8Array(Buffer.from(body)) : json(body))).error as
          | { code: string }
          | undefined
      )?.code
    expect(await ask('not json')).toBe('GH_CLAIM_REQUEST_INVALID')
    expect(await ask({ deviceId: 'pump-0001' })).toBe('GH_CLAIM_REQUEST_INVALID')
    // larger than the 80 KiB cap: refused before it is parsed
    expect(await ask({ deviceId: 'pump-0001', csr: 'x'.repeat(81 * 1024), token })).toBe('GH_CLAIM_REQUEST_INVALID')
    expect(await ask({ deviceId: 'bad/id', csr: await key.csr('x'), token })).toBe('GH_DEVICE_ID_INVALID')
    expect(await ask({ deviceId: 'valve-0001', csr: await key.csr('valve-0001'), token })).toBe('GH_CLAIM_ID_NOT_ALLOWED')
    expect(await ask({ deviceId: 'pump-0001', csr: await key.csr('pump-0001') })).toBe('GH_CLAIM_TOKEN_INVALID')
    expect(await ask({ deviceId: 'pump-0001', csr: await key.csr('pump-0002'), token })).toBe('GH_CSR_CN_MISMATCH')
    expect(await ask({ deviceId: 'pump-0001', csr: await key.csr('pump-0001'), token })).toBeUndefined()
    expect(await ask({ deviceId: 'pump-0002', csr: await key.csr('pump-0002'), token })).toBe('GH_CLAIM_TOKEN_INVALID')
    const refusals = await store.listAudit({ action: 'claim.refused', subject: `claim:${created.claim.id}` })
    expect(refusals.map((r) => r.details.code).sort()).toEqual([
      'GH_CLAIM_ID_NOT_ALLOWED',
      'GH_CLAIM_REQUEST_INVALID',
      'GH_CLAIM_TOKEN_INVALID',
      'GH_CSR_CN_MISMATCH',
      'GH_DEVICE_ID_INVALID',
    ])
    expect(refusals.find((r) => r.details.code === 'GH_CLAIM_TOKEN_INVALID')?.details).toMatchObject({
      deviceId: 'pump-0001',
      clientId: 'claim:nonce-0123456789abcdef',
      remoteAddress: '127.0.0.1',
      suppressed: 0,
    })
    clock.advance('2h')
    expect(await ask({ deviceId: 'pump-0003', csr: await key.csr('pump-0003'), token })).toBe('GH_CLAIM_EXPIRED')
    await claimService.revoke(created.claim.id, 'operator:test')
    expect(await ask({ deviceId: 'pump-0003', csr: await key.csr('pump-0003'), token })).toBe('GH_CLAIM_REVOKED')
  })

  it('refuses an id that is taken', async () => {
    const { createClaim, enrollment, context, authority } = await enrollmentFixture()
    await authority.createDevice({ id: 'pump-0001' }, 'operator:test')
    const created = await createClaim()
    const key = await deviceKey()
    const answer = await enrollment.claim(context(created), json({ deviceId: 'pump-0001', csr: await key.csr('pump-0001') }))
    expect(answer).toMatchObject({ ok: false, error: { code: 'GH_DEVICE_EXISTS' } })
  })
})

describe('EnrollmentService.renew', () => {
  async function provisioned() {
    const f = await enrollmentFixture()
    const issued = await f.authority.createDevice({ id: 'pump-1' }, 'operator:test')
    const ctx = { deviceId: 'pump-1', serial: issued.serial, remoteAddress: '127.0.0.1' }
    return { ...f, issued, ctx }
  }

  it('refuses before the window opens, saying when it does', async () => {
    const { enrollment, ctx, issued, store } = await provisioned()
    const key = await deviceKey()
    const answer = await enrollment.renew(ctx, json({ csr: await key.csr('pump-1'), requestId: 'x' }))
    const opens = new Date(
      issued.notBefore.getTime() + Math.floor((2 / 3) * (issued.notAfter.getTime() - issued.notBefore.getTime())),
    ).toISOString()
    expect(answer).toMatchObject({ ok: false, requestId: 'x', error: { code: 'GH_RENEWAL_TOO_EARLY', renewAfter: opens } })
    expect((answer.error as { message: string }).message).toContain(opens)
    expect(await store.listAudit({ action: 'renewal.refused', subject: 'pump-1' })).toHaveLength(1)
  })

  it('renews inside the window, audited with via mqtt, and answers a repeat with the same certificate', async () => {
    const { enrollment, ctx, clock, store } = await provisioned()
    clock.advance('21d')
    const key = await deviceKey()
    const payload = json({ csr: await key.csr('pump-1') })
    const answer = await enrollment.renew(ctx, payload)
    expect(answer).toMatchObject({
      ok: true,
      deviceId: 'pump-1',
      previousValidUntil: new Date(clock.now().getTime() + 86_400_000).toISOString(),
    })
    expect((await store.listAudit({ action: 'device.renewed', subject: 'pump-1' }))[0]).toMatchObject({
      actor: 'device:pump-1',
      details: { via: 'mqtt' },
    })
    expect(await enrollment.renew(ctx, payload)).toMatchObject({ ok: true, serial: answer.serial })
    const other = await deviceKey()
    expect(await enrollment.renew(ctx, json({ csr: await other.csr('pump-1') }))).toMatchObject({
      ok: false,
      error: { code: 'GH_RENEWAL_NOT_CURRENT' },
    })
  })

  it('refuses the old key, a CSR for another id and a malformed request', async () => {
    const { enrollment, ctx, clock, issued } = await provisioned()
    clock.advance('21d')
    const oldKey = parseCertificatePem(issued.certificatePem)
    expect(oldKey).toBeDefined()
    const { createCsrPem } = await import('../../../../certs/create-csr.ts')
    const { privateKeyFromPem } = await import('../../../../certs/index.ts')
    const { webcrypto } = await import('node:crypto')
    const privateKey = await privateKeyFromPem(issued.privateKey!.pem)
    const jwk = await webcrypto.subtle.exportKey('jwk', privateKey)
    delete jwk.d
    jwk.key_ops = ['verify']
    const publicKey = await webcrypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify'])
    const reused = await createCsrPem({ commonName: 'pump-1', keys: { privateKey, publicKey } })
    expect(await enrollment.renew(ctx, json({ csr: reused }))).toMatchObject({ ok: false, error: { code: 'GH_RENEWAL_KEY_REUSED' } })
    const key = await deviceKey()
    expect(await enrollment.renew(ctx, json({ csr: await key.csr('pump-2') }))).toMatchObject({
      ok: false,
      error: { code: 'GH_CSR_CN_MISMATCH' },
    })
    expect(await enrollment.renew(ctx, json({ csr: 42 }))).toMatchObject({ ok: false, error: { code: 'GH_RENEWAL_REQUEST_INVALID' } })
  })
})
