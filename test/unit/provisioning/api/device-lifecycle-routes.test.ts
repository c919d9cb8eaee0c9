import { describe, expect, it } from 'vitest'
import { parseCertificatePem } from '../../../../certs/index.ts'
import { makeTestCsr } from '../../../helpers/test-ca.ts'
import { apiHarness } from './api-harness.ts'

async function lifecycle() {
  const h = await apiHarness()
  const write = await h.keyWith('devices:write', 'devices:read') // k1
  const readOnly = await h.keyWith('devices:read', 'devices:revoke') // k2
  /** what the registry holds beyond its devices: a refused request must change none of it */
  const footprint = async () => ({
    devices: await h.store.listDevices(),
    audit: await h.store.listAudit(),
    seq: await h.store.lastEventSeq(),
  })
  const events = async (after: number) => (await h.store.eventsAfter(after, 100)).map((e) => ({ type: e.type, ...e.data }))
  return { ...h, write, readOnly, footprint, events }
}

describe('POST /v1/devices (register from a CSR)', () => {
  it('issues the certificate for the CSR key, with the chain, and audits device.created with the API key as actor', async () => {
    const { call, write, store, authority } = await lifecycle()
    const csr = await makeTestCsr({ commonName: 'line-7' })
    const res = await call(write, 'POST', '/v1/devices', {
      id: 'line-7',
      csr: csr.pem,
      group: 'factory',
      tier: 'premium',
      labels: { site: 'north' },
    })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.headers.location).toBe('/v1/devices/line-7')
    const body = res.json()
    expect(body).toMatchObject({
      deviceId: 'line-7',
      device: { id: 'line-7', group: 'factory', tier: 'premium', status: 'active', labels: { site: 'north' } },
    })
    expect(body.chainPem).toBe(authority.chainPem())
    const cert = parseCertificatePem(body.certificatePem)
    expect(cert.subject).toContain('CN=line-7')
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', csr.keys.publicKey))
    expect(new Uint8Array(cert.publicKey.rawData)).toEqual(spki)
    expect(body).not.toHaveProperty('privateKey')
    expect(await store.listAudit({ subject: 'line-7' })).toEqual([
      expect.objectContaining({
        actor: 'apikey:k1',
        action: 'device.created',
        details: expect.objectContaining({ fromCsr: true, labels: { site: 'north' } }),
      }),
    ])
  })

  it.each([
    ['fail/no scope devices:write', 'readOnly', { id: 'x-1' }, 403, 'GH_API_KEY_SCOPE'],
    ['fail/no csr', 'write', { id: 'x-1' }, 400, 'GH_API_VALIDATION'],
    ['fail/csr for another id', 'write', { id: 'x-1', csrFor: 'x-2' }, 400, 'GH_CSR_CN_MISMATCH'],
    ['fail/not a csr', 'write', { id: 'x-1', csr: 'hello' }, 400, 'GH_CSR_UNPARSABLE'],
    ['fail/bad label key', 'write', { id: 'x-1', labels: { '-x': 'y' } }, 400, 'GH_API_VALIDATION'],
    [
      'fail/too many labels',
      'write',
      { id: 'x-1', labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) },
      400,
      'GH_API_VALIDATION',
    ],
    ['fail/bad tier', 'write', { id: 'x-1', tier: 'a b' }, 400, 'GH_API_VALIDATION'],
    ['fail/existing id', 'write', { id: 'taken' }, 409, 'GH_DEVICE_EXISTS'],
  ] as const)('%s: refused with problem+json, nothing stored', async (_name, who, input, status, code) => {
    const h = await lifecycle()
    await h.authority.createDevice({ id: 'taken' }, 'op')
    const before = await h.footprint()
    const { csrFor, ...rest } = input as Record<string, unknown>
    const csr = (await makeTestCsr({ commonName: String(csrFor ?? rest.id) })).pem
    const body = { ...('csr' in rest || _name === 'fail/no csr' ? {} : { csr }), ...rest }
    const res = await h.call(who === 'write' ? h.write : h.readOnly, 'POST', '/v1/devices', body)
    expect(res.statusCode, res.body).toBe(status)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(res.json().code).toBe(code)
    expect(await h.footprint()).toEqual(before)
  })

  it('refuses a CSR whose key is already in another device certificate (GH_CSR_KEY_IN_USE), for a register and a renew', async () => {
    const h = await lifecycle()
    const first = await makeTestCsr({ commonName: 'one' })
    expect((await h.call(h.write, 'POST', '/v1/devices', { id: 'one', csr: first.pem })).statusCode).toBe(201)
    await h.authority.createDevice({ id: 'two' }, 'op')
    const before = await h.footprint()
    const sameKey = async (cn: string) => {
      const { Pkcs10CertificateRequestGenerator } = await import('@peculiar/x509')
      const req = await Pkcs10CertificateRequestGenerator.create({
        name: `CN=${cn}`,
        keys: first.keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      })
      return req.toString('pem')
    }
    const reg = await h.call(h.write, 'POST', '/v1/devices', { id: 'three', csr: await sameKey('three') })
    expect(reg.statusCode).toBe(409)
    expect(reg.json().code).toBe('GH_CSR_KEY_IN_USE')
    const renew = await h.call(h.write, 'POST', '/v1/devices/two/renew', { csr: await sameKey('two') })
    expect(renew.json().code).toBe('GH_CSR_KEY_IN_USE')
    expect(await h.footprint()).toEqual(before)
    // the same device may renew with its own key
    expect((await h.call(h.write, 'POST', '/v1/devices/one/renew', { csr: await sameKey('one') })).statusCode).toBe(200)
  })
})

describe('POST /v1/devices/{id}/renew', () => {
  it('issues a new certificate from the CSR, supersedes the old one and audits device.renewed via api', async () => {
    const { call, write, authority, store } = await lifecycle()
    const old = await authority.createDevice({ id: 'm-1' }, 'op')
    const res = await call(write, 'POST', '/v1/devices/m-1/renew', { csr: (await makeTestCsr({ commonName: 'm-1' })).pem })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ deviceId: 'm-1', chainPem: authority.chainPem() })
    expect(res.json().serial).not.toBe(old.serial)
    expect((await store.getCertificate(old.serial))?.status).toBe('superseded')
    expect((await store.listAudit({ subject: 'm-1', action: 'device.renewed' }))[0]).toMatchObject({
      actor: 'apikey:k1',
      details: { via: 'api' },
    })
    expect((await call(write, 'POST', '/v1/devices/nope/renew', { csr: (await makeTestCsr({ commonName: 'nope' })).pem })).statusCode).toBe(
      404,
    )
  })
})

describe('POST /v1/devices/{id}/disable and /enable', () => {
  it('disables and enables with the same audit entries and events as the CLI', async () => {
    const { call, write, readOnly, authority, store, events } = await lifecycle()
    await authority.createDevice({ id: 'd-1' }, 'op')
    const seq = await store.lastEventSeq()
    expect((await call(readOnly, 'POST', '/v1/devices/d-1/disable')).statusCode).toBe(403)
    const off = await call(write, 'POST', '/v1/devices/d-1/disable')
    expect(off.json()).toMatchObject({ id: 'd-1', status: 'disabled', labels: {} })
    expect((await call(write, 'POST', '/v1/devices/d-1/disable')).json().code).toBe('GH_DEVICE_STATE')
    expect((await call(write, 'POST', '/v1/devices/d-1/enable')).json()).toMatchObject({ status: 'active' })
    expect(await events(seq)).toEqual([
      { type: 'device.disabled', deviceId: 'd-1' },
      { type: 'device.enabled', deviceId: 'd-1' },
    ])
    expect((await store.listAudit({ subject: 'd-1' })).map((e) => [e.actor, e.action])).toEqual([
      ['apikey:k1', 'device.enabled'],
      ['apikey:k1', 'device.disabled'],
      ['op', 'device.created'],
    ])
  })
})

describe('a device named bulk', () => {
  it('keeps its own routes: the bulk actions live under /v1/bulk/devices', async () => {
    const { call, write, readOnly, authority } = await lifecycle()
    await authority.createDevice({ id: 'bulk' }, 'op')
    expect((await call(write, 'POST', '/v1/devices/bulk/disable')).json()).toMatchObject({ id: 'bulk', status: 'disabled' })
    expect((await call(readOnly, 'POST', '/v1/devices/bulk/revoke')).json()).toMatchObject({ deviceId: 'bulk', status: 'revoked' })
  })
})

describe('PATCH /v1/devices/{id}', () => {
  it('changes group, tier and labels (null removes one), audits from/to and appends device.updated', async () => {
    const { call, write, authority, store, events } = await lifecycle()
    await authority.createDevice({ id: 'p-1', group: 'g1', labels: { site: 'north', line: '1' } }, 'op')
    const seq = await store.lastEventSeq()
    const res = await call(
      write,
      'PATCH',
      '/v1/devices/p-1',
      { group: 'g2', tier: 'premium', labels: { line: null, rack: '4' } },
      {
        'content-type': 'application/merge-patch+json',
      },
    )
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ id: 'p-1', group: 'g2', tier: 'premium', labels: { site: 'north', rack: '4' } })
    expect(await events(seq)).toEqual([{ type: 'device.updated', deviceId: 'p-1' }])
    expect((await store.listAudit({ subject: 'p-1', action: 'device.updated' }))[0]).toMatchObject({
      actor: 'apikey:k1',
      details: {
        group: { from: 'g1', to: 'g2' },
        tier: { from: 'standard', to: 'premium' },
        labels: { from: { line: '1', site: 'north' }, to: { rack: '4', site: 'north' } },
      },
    })
    // nothing to change: no audit entry, no event
    const seq2 = await store.lastEventSeq()
    expect((await call(write, 'PATCH', '/v1/devices/p-1', { tier: 'premium' })).statusCode).toBe(200)
    expect(await events(seq2)).toEqual([])
    // group null clears it
    expect((await call(write, 'PATCH', '/v1/devices/p-1', { group: null })).json().group).toBeNull()
  })

  it.each([
    ['fail/empty body', {}, 400, 'GH_API_VALIDATION'],
    ['fail/bad group', { group: 'a/b' }, 400, 'GH_API_VALIDATION'],
    ['fail/unknown field', { status: 'revoked' }, 400, 'GH_API_VALIDATION'],
    ['fail/bad label value', { labels: { site: 'no spaces' } }, 400, 'GH_API_VALIDATION'],
    [
      'fail/labels over the bound',
      { labels: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`n${i}`, 'v'])) },
      400,
      'GH_LABELS_INVALID',
    ],
  ] as const)('%s: refused, nothing stored', async (_name, body, status, code) => {
    const h = await lifecycle()
    await h.authority.createDevice({ id: 'p-1', labels: { site: 'north' } }, 'op')
    const before = { ...(await h.footprint()), labels: await h.store.labels('p-1') }
    const res = await h.call(h.write, 'PATCH', '/v1/devices/p-1', body)
    expect(res.statusCode, res.body).toBe(status)
    expect(res.json().code).toBe(code)
    expect({ ...(await h.footprint()), labels: await h.store.labels('p-1') }).toEqual(before)
  })

  it('refuses to change a revoked device', async () => {
    const { call, write, authority } = await lifecycle()
    await authority.createDevice({ id: 'r-1' }, 'op')
    await authority.revokeDevice('r-1', 'unspecified', 'op')
    expect((await call(write, 'PATCH', '/v1/devices/r-1', { tier: 'x' })).json().code).toBe('GH_DEVICE_REVOKED')
  })
})

describe('GET /v1/devices filters', () => {
  it('filters by labels (ANDed), tier and certificate expiry, with keyset pages', async () => {
    const { call, write, authority, clock } = await lifecycle()
    await authority.createDevice({ id: 'a-1', labels: { site: 'n', line: '1' } }, 'op')
    await authority.createDevice({ id: 'a-2', labels: { site: 'n', line: '1' }, tier: 'premium' }, 'op')
    await authority.createDevice({ id: 'a-3', labels: { site: 'n', line: '2' }, validDays: 10 }, 'op')
    await authority.createDevice({ id: 'b-1', labels: { site: 's', line: '1' } }, 'op')
    const ids = async (q: string) => (await call(write, 'GET', `/v1/devices?${q}`)).json().items.map((d: { id: string }) => d.id)
    expect(await ids('label=site%3Dn')).toEqual(['a-1', 'a-2', 'a-3'])
    expect(await ids('label=site%3Dn&label=line%3D1')).toEqual(['a-1', 'a-2'])
    expect(await ids('label=line%3D1&tier=premium')).toEqual(['a-2'])
    expect(await ids(`expiresBefore=${new Date(clock.now().getTime() + 20 * 86_400_000).toISOString()}`)).toEqual(['a-3'])
    const page = (await call(write, 'GET', '/v1/devices?label=site%3Dn&limit=2')).json()
    expect(page.next).toBe('a-2')
    expect(await ids('label=site%3Dn&limit=2&after=a-2')).toEqual(['a-3'])
    const items = (await call(write, 'GET', '/v1/devices?label=site%3Ds')).json().items
    expect(items[0].labels).toEqual({ line: '1', site: 's' })
    const bad = await call(write, 'GET', '/v1/devices?label=nonsense')
    expect(bad.statusCode).toBe(400)
    expect(bad.json().code).toBe('GH_LABELS_INVALID')
  })
})

describe('POST /v1/bulk/devices/*', () => {
  async function fleet() {
    const h = await lifecycle()
    for (const id of ['s-1', 's-2', 's-3']) await h.authority.createDevice({ id, group: 'sensors', labels: { site: 'n' } }, 'op')
    await h.authority.createDevice({ id: 'v-1', group: 'valves', labels: { site: 'n' } }, 'op')
    return h
  }

  it('a dry run reports what would change and changes nothing', async () => {
    const h = await fleet()
    const before = await h.footprint()
    const res = await h.call(h.write, 'POST', '/v1/bulk/devices/move', {
      selector: { labels: { site: 'n' }, group: 'sensors' },
      to: { group: 'moved', tier: 'premium' },
      max: 3,
      dryRun: true,
    })
    expect(res.json()).toEqual({ action: 'move', dryRun: true, count: 3, deviceIds: ['s-1', 's-2', 's-3'] })
    expect(await h.footprint()).toEqual(before)
  })

  it('moves the selected devices, one audit entry and one device.updated per device', async () => {
    const h = await fleet()
    const seq = await h.store.lastEventSeq()
    const res = await h.call(h.write, 'POST', '/v1/bulk/devices/move', { selector: { group: 'sensors' }, to: { tier: 'premium' }, max: 3 })
    expect(res.json()).toMatchObject({ count: 3, deviceIds: ['s-1', 's-2', 's-3'] })
    expect((await h.store.listDevices({ tier: 'premium' })).map((d) => d.id)).toEqual(['s-1', 's-2', 's-3'])
    expect(await h.events(seq)).toEqual(['s-1', 's-2', 's-3'].map((deviceId) => ({ type: 'device.updated', deviceId })))
    const audit = await h.store.listAudit({ action: 'device.updated' })
    expect(audit).toHaveLength(3)
    for (const e of audit)
      expect(e).toMatchObject({ actor: 'apikey:k1', details: { tier: { from: 'standard', to: 'premium' }, bulk: true } })
    // a second run changes nothing: they are there already
    expect(
      (await h.call(h.write, 'POST', '/v1/bulk/devices/move', { selector: { group: 'sensors' }, to: { tier: 'premium' }, max: 1 })).json(),
    ).toMatchObject({ count: 0 })
  })

  it.each([
    ['fail/over max', 'disable', { selector: { group: 'sensors' }, max: 2 }, 409, 'GH_BULK_OVER_MAX'],
    ['fail/empty selector', 'disable', { selector: {}, max: 5 }, 400, 'GH_BULK_INVALID'],
    ['fail/no max', 'disable', { selector: { group: 'sensors' } }, 400, 'GH_API_VALIDATION'],
    ['fail/max too big', 'disable', { selector: { group: 'sensors' }, max: 10_001 }, 400, 'GH_API_VALIDATION'],
    ['fail/move without target', 'move', { selector: { group: 'sensors' }, max: 5, to: {} }, 400, 'GH_API_VALIDATION'],
    ['fail/bad selector label', 'enable', { selector: { labels: { 'bad key': 'x' } }, max: 5 }, 400, 'GH_API_VALIDATION'],
    ['fail/revoke without devices:revoke', 'revoke', { selector: { group: 'sensors' }, max: 5 }, 403, 'GH_API_KEY_SCOPE'],
  ] as const)('%s: refused, nothing changed', async (_name, action, body, status, code) => {
    const h = await fleet()
    const before = await h.footprint()
    const res = await h.call(h.write, 'POST', `/v1/bulk/devices/${action}`, body)
    expect(res.statusCode, res.body).toBe(status)
    expect(res.json().code).toBe(code)
    expect(await h.footprint()).toEqual(before)
  })

  it('a bulk revoke needs devices:revoke and audits device.revoked per device with the reason', async () => {
    const h = await fleet()
    const res = await h.call(h.readOnly, 'POST', '/v1/bulk/devices/revoke', {
      selector: { group: 'sensors' },
      max: 3,
      reason: 'superseded',
    })
    expect(res.json()).toMatchObject({ action: 'revoke', count: 3 })
    expect((await h.store.listAudit({ action: 'device.revoked' })).map((e) => [e.actor, e.details.reason, e.details.bulk])).toEqual(
      Array.from({ length: 3 }, () => ['apikey:k2', 'superseded', true]),
    )
    expect((await h.store.listDevices({ status: 'revoked' })).map((d) => d.id)).toEqual(['s-1', 's-2', 's-3'])
  })
})
