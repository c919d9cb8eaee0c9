import { describe, expect, it } from 'vitest'
import { CHECKS_REUSE_MS } from '../../../../provisioning/api/checks-routes.ts'
import { apiHarness } from './api-harness.ts'

describe('GET /v1/checks', () => {
  it('runs the checks once for many calls within the reuse window, and again after it or for other silentDays', async () => {
    const h = await apiHarness({ rateLimit: { ratePerSecond: 1000, burst: 1000 } })
    const auth = await h.keyWith('checks:read')
    const answers = await Promise.all(Array.from({ length: 50 }, () => h.call(auth, 'GET', '/v1/checks')))
    expect(answers.map((a) => a.statusCode)).toEqual(Array(50).fill(200))
    expect(h.checkRuns()).toBe(1)
    h.clock.advance(CHECKS_REUSE_MS - 1)
    expect((await h.call(auth, 'GET', '/v1/checks')).statusCode).toBe(200)
    expect(h.checkRuns()).toBe(1)
    h.clock.advance(1)
    expect((await h.call(auth, 'GET', '/v1/checks')).statusCode).toBe(200)
    expect(h.checkRuns()).toBe(2)
    expect((await h.call(auth, 'GET', '/v1/checks?silentDays=7')).statusCode).toBe(200)
    expect(h.checkRuns()).toBe(3)
  })
})
