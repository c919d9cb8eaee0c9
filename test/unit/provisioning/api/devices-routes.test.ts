import { describe, expect, it } from 'vitest'
import { apiHarness, T0 } from './api-harness.ts'

async function fleet() {
  const h = await apiHarness()
  for (const id of ['a-1', 'a-2', 'b-1', 'b-2', 'c-1'])
    await h.authority.createDevice({ id, group: id.startsWith('a') ? 'alpha' : 'beta' }, 'op')
  const auth = await h.keyWith('devices:read', 'devices:revoke')
  return { ...h, auth }
}

describe('GET /v1/devices', () => {
  it('pages through the devices by id with ?limit and ?after, and says when there is no next page', async () => {
    const { call, auth } = await fleet()
    const ids: string[] = []
    let next: string | null = null
    let pages = 0
    do {
      const res = await call(auth, 'GET', `/v1/devices?limit=2${next ? `&after=${next}` : ''}`)
      expect(res.statusCode).toBe(200)
      const body = res.json() as { items: { id: string }[]; next: string | null }
      ids.push(...body.items.map((d) => d.id))
      next = body.next
      pages++
    } while (next)
    expect(ids).toEqual(['a-1', 'a-2', 'b-1', 'b-2', 'c-1'])
    expect(pages).toBe(3)
  })

  it('filters by group and status, and shows presence, certificate expiry and settings sync', async () => {
    const { call, auth, connected, authority } = await fleet()
    connected.set('a-2', new Date('2026-01-01T00:00:00Z'))
    await authority.revokeDevice('a-1', 'keyCompromise', 'op')
    const res = await call(auth, 'GET', '/v1/devices?group=alpha&status=active')
    expect(res.json()).toEqual({
      items: [
        {
          id: 'a-2',
          group: 'alpha',
          tier: 'standard',
          status: 'active',
          labels: {},
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
          connected: true,
          lastSeen: '2026-01-01T00:00:00.000Z',
          certificateExpiresAt: '2026-01-31T00:00:00.000Z',
          settings: { version: 1, inSync: false },
        },
      ],
      next: null,
    })
    const revoked = (await call(auth, 'GET', '/v1/devices?status=revoked')).json()
    expect(revoked.items).toEqual([expect.objectContaining({ id: 'a-1', certificateExpiresAt: null, connected: false, lastSeen: null })])
  })

  it.each([
    ['fail/limit-zero', '/v1/devices?limit=0', 'query.limit'],
    ['fail/limit-huge', '/v1/devices?limit=100000', 'query.limit'],
    ['fail/status', '/v1/devices?status=gone', 'query.status'],
    ['fail/group', '/v1/devices?group=a%2Fb', 'query.group'],
    ['fail/unknown-param', '/v1/devices?colour=red', 'query.colour'],
    ['fail/device-id', '/v1/devices/a%2Fb', 'params.id'],
  ])('%s names the exact field', async (_name, url, field) => {
    const { call, auth } = await fleet()
    const res = await call(auth, 'GET', url)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'GH_API_VALIDATION', errors: [expect.objectContaining({ field })] })
  })
})

describe('GET /v1/devices/{id}', () => {
  it('shows a device with its certificates, and 404 for an unknown id', async () => {
    const { call, auth, authority } = await fleet()
    const renewed = await authority.renewDevice('b-1', {}, 'op')
    const res = await call(auth, 'GET', '/v1/devices/b-1')
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ id: 'b-1', group: 'beta', status: 'active', connected: false })
    expect(body.certificates).toHaveLength(2)
    expect(body.certificates.find((c: { serial: string }) => c.serial === renewed.serial)).toEqual({
      serial: renewed.serial,
      fingerprint: renewed.fingerprint,
      notBefore: renewed.notBefore.toISOString(),
      notAfter: renewed.notAfter.toISOString(),
      status: 'active',
      supersededAt: null,
      revokedAt: null,
      revocationReason: null,
    })
    const old = body.certificates.find((c: { serial: string }) => c.serial !== renewed.serial)
    expect(old.status).toBe('superseded')
    expect(Date.parse(old.supersededAt)).toBeGreaterThan(Date.parse(T0))
    expect(JSON.stringify(body)).not.toContain('BEGIN CERTIFICATE')
    const missing = await call(auth, 'GET', '/v1/devices/nope')
    expect(missing.statusCode).toBe(404)
    expect(missing.json().code).toBe('GH_DEVICE_NOT_FOUND')
  })
})

describe('POST /v1/devices/{id}/revoke', () => {
  it('revokes with the reason and the key as actor, then 409 for a second revoke and 404 for an unknown id', async () => {
    const { call, auth, store } = await fleet()
    const res = await call(auth, 'POST', '/v1/devices/c-1/revoke', { reason: 'keyCompromise' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ deviceId: 'c-1', status: 'revoked', reason: 'keyCompromise', revokedSerials: [expect.any(String)] })
    expect((await store.getDevice('c-1'))?.status).toBe('revoked')
    expect(await store.listAudit({ action: 'device.revoked' })).toEqual([expect.objectContaining({ actor: 'apikey:k1', subject: 'c-1' })])
    const again = await call(auth, 'POST', '/v1/devices/c-1/revoke')
    expect(again.statusCode).toBe(409)
    expect(again.json().code).toBe('GH_DEVICE_REVOKED')
    expect((await call(auth, 'POST', '/v1/devices/zz/revoke')).statusCode).toBe(404)
  })

  it('takes no body as reason unspecified, and refuses an unknown reason or field naming it', async () => {
    const { call, auth, store } = await fleet()
    for (const [body, field] of [
      [{ reason: 'bored' }, 'body.reason'],
      [{ reason: 'superseded', force: true }, 'body.force'],
    ] as const) {
      const res = await call(auth, 'POST', '/v1/devices/a-1/revoke', body)
      expect(res.statusCode).toBe(400)
      expect(res.json().errors).toEqual([expect.objectContaining({ field })])
    }
    expect((await store.getDevice('a-1'))?.status).toBe('active')
    const res = await call(auth, 'POST', '/v1/devices/a-1/revoke')
    expect(res.json()).toMatchObject({ reason: 'unspecified' })
  })
})
