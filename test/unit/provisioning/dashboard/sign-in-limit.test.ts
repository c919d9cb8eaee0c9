import { describe, expect, it } from 'vitest'
import { apiHarness } from '../api/api-harness.ts'

const signIn = (h: Awaited<ReturnType<typeof apiHarness>>, key: string, remoteAddress = '203.0.113.7', forwardedFor?: string) =>
  h.app.inject({
    method: 'POST',
    url: '/dashboard/sign-in',
    remoteAddress,
    headers: { 'content-type': 'application/json', ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) },
    payload: { key },
  })

const WRONG = `ghk_000000000000_${'x'.repeat(43)}`

/** a harness with the dashboard, a dashboard key, and sign-in limits of `perAddress` attempts per minute and `overall` in all */
async function harness(perAddress: number, overall = 1000, trustProxy?: string[]) {
  const h = await apiHarness(
    {
      ...(trustProxy && { trustProxy }),
      dashboard: {
        signInPerAddress: { ratePerSecond: perAddress / 60, burst: perAddress },
        signInOverall: { ratePerSecond: 1, burst: overall },
      },
    },
    { dashboard: true },
  )
  const key = (await h.apiKeys.create({ name: 'ops-dash', scopes: ['dashboard'] }, 'operator:test')).token
  const limitedAudits = async () => (await h.store.listAudit({ action: 'dashboard.sign-in.limited' })).length
  return { h, key, limitedAudits }
}

describe('dashboard sign-in rate limit (issue 13)', () => {
  it('refuses an address after N wrong keys with 429 GH_DASHBOARD_SIGN_IN_LIMITED and Retry-After, audited once per window; the right key works after it', async () => {
    const { h, key, limitedAudits } = await harness(3)
    for (let i = 0; i < 3; i++) expect((await signIn(h, WRONG)).statusCode).toBe(401)
    const limited = await signIn(h, key) // the right key too: the address is over its attempts
    expect(limited.statusCode).toBe(429)
    expect(limited.json().code).toBe('GH_DASHBOARD_SIGN_IN_LIMITED')
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(limited.headers['set-cookie']).toBeUndefined()
    expect((await signIn(h, WRONG)).statusCode).toBe(429)
    expect(await limitedAudits()).toBe(1)
    // another address is not held back by this one
    expect((await signIn(h, key, '198.51.100.9')).statusCode).toBe(200)
    h.clock.advance('60s')
    const after = await signIn(h, key)
    expect(after.statusCode).toBe(200)
    expect(after.headers['set-cookie']).toMatch(/^gatehouse_session=/)
  })

  it('forgives an address its failed attempts when it signs in', async () => {
    const { h, key } = await harness(3)
    for (let i = 0; i < 2; i++) expect((await signIn(h, WRONG)).statusCode).toBe(401)
    expect((await signIn(h, key)).statusCode).toBe(200)
    for (let i = 0; i < 3; i++) expect((await signIn(h, WRONG)).statusCode).toBe(401)
    expect((await signIn(h, WRONG)).statusCode).toBe(429)
  })

  it('limits the attempts of all addresses together', async () => {
    const { h, key, limitedAudits } = await harness(100, 4)
    for (let i = 0; i < 4; i++) expect((await signIn(h, WRONG, `192.0.2.${i + 1}`)).statusCode).toBe(401)
    const limited = await signIn(h, key, '192.0.2.99')
    expect(limited.statusCode).toBe(429)
    expect(limited.json().code).toBe('GH_DASHBOARD_SIGN_IN_LIMITED')
    expect(await limitedAudits()).toBe(1)
  })

  it('behind a trusted proxy (httpTrustProxy), counts each client by the address its X-Forwarded-For names', async () => {
    const PROXY = '10.0.0.1'
    const { h, key } = await harness(3, 1000, ['10.0.0.0/8'])
    for (let i = 0; i < 3; i++) expect((await signIn(h, WRONG, PROXY, '203.0.113.7')).statusCode).toBe(401)
    expect((await signIn(h, key, PROXY, '203.0.113.7')).statusCode).toBe(429)
    // another operator behind the same proxy is not held back by the first (without the setting they share one budget)
    expect((await signIn(h, key, PROXY, '198.51.100.9')).statusCode).toBe(200)
  })

  it('ignores X-Forwarded-For from an address it does not trust, so a client cannot pick its own budget', async () => {
    for (const trust of [undefined, ['10.0.0.0/8']]) {
      const { h, key } = await harness(3, 1000, trust)
      for (let i = 0; i < 3; i++) expect((await signIn(h, WRONG, '203.0.113.7', `192.0.2.${i + 1}`)).statusCode).toBe(401)
      expect((await signIn(h, key, '203.0.113.7', '192.0.2.200')).statusCode).toBe(429)
    }
  })
})
