import { describe, expect, it } from 'vitest'
import { apiHarness } from './api-harness.ts'

const SLOW = { broker: { publishRate: { ratePerSecond: 2, burst: 4 } }, ai: { dailyRequests: 100 } }

async function withDevice() {
  const h = await apiHarness()
  await h.authority.createDevice({ id: 'pump-1', tier: 'premium' }, 'operator:test')
  return { ...h, auth: await h.keyWith('tiers:write', 'devices:read') }
}

describe('tier routes', () => {
  it("lists the configured tiers, replaces a tier's limits with an audit entry and a tier.updated event", async () => {
    const { call, auth, store } = await withDevice()
    const before = await store.lastEventSeq()
    const put = await call(auth, 'PUT', '/v1/tiers/premium', SLOW)
    expect(put.statusCode).toBe(200)
    expect(put.json()).toMatchObject({ tier: 'premium', limits: SLOW, updatedBy: expect.stringMatching(/^apikey:/) })
    expect((await call(auth, 'GET', '/v1/tiers')).json().items).toEqual([
      expect.objectContaining({ tier: 'premium', limits: SLOW }),
      { tier: 'standard', limits: {}, updatedAt: null, updatedBy: null },
    ])
    expect(await store.eventsAfter(before, 10)).toEqual([expect.objectContaining({ type: 'tier.updated', data: { tier: 'premium' } })])
    expect(await store.listAudit({ action: 'tier.updated' })).toEqual([
      expect.objectContaining({ subject: 'premium', details: { limits: SLOW } }),
    ])
  })

  it("lets a device's own limits beat its tier's, field by field, and removes them again (device.updated each time)", async () => {
    const { call, auth, store } = await withDevice()
    await call(auth, 'PUT', '/v1/tiers/premium', SLOW)
    const before = await store.lastEventSeq()
    const own = await call(auth, 'PUT', '/v1/devices/pump-1/limits', { broker: { publishRate: { burst: 40 } } })
    expect(own.json()).toMatchObject({
      tier: 'premium',
      applied: { broker: { publishRate: { ratePerSecond: 2, burst: 40 } }, ai: { dailyRequests: 100 } },
    })
    const cleared = await call(auth, 'DELETE', '/v1/devices/pump-1/limits')
    expect(cleared.json()).toMatchObject({ override: null, applied: SLOW })
    expect((await store.eventsAfter(before, 10)).map((e) => [e.type, e.data])).toEqual([
      ['device.updated', { deviceId: 'pump-1' }],
      ['device.updated', { deviceId: 'pump-1' }],
    ])
    expect((await store.listAudit({ subject: 'pump-1' })).map((a) => a.action)).toContain('device.limits.cleared')
  })

  it.each([
    ['fail/out of range', '/v1/tiers/premium', { broker: { publishRate: { ratePerSecond: 0 } } }, 400, 'GH_API_VALIDATION'],
    ['fail/unknown limit', '/v1/tiers/premium', { broker: { maxConnections: { burst: 1 } } }, 400, 'GH_API_VALIDATION'],
    ['fail/AI budget out of range', '/v1/tiers/premium', { ai: { dailyRequests: -1 } }, 400, 'GH_API_VALIDATION'],
    [
      'fail/bytes burst under the largest packet',
      '/v1/tiers/premium',
      { broker: { publishBytesRate: { burst: 100 } } },
      400,
      'GH_LIMITS_INVALID',
    ],
    ['fail/unknown tier', '/v1/tiers/gold', SLOW, 404, 'GH_TIER_UNKNOWN'],
    ['fail/unknown device', '/v1/devices/pump-9/limits', SLOW, 404, 'GH_DEVICE_NOT_FOUND'],
    ['fail/bad device limits', '/v1/devices/pump-1/limits', { broker: { packetRate: { burst: 0.5 } } }, 400, 'GH_API_VALIDATION'],
  ])('%s is refused with a problem and stores nothing', async (_name, url, body, status, code) => {
    const { call, auth, store, limits } = await withDevice()
    const before = await store.lastEventSeq()
    const res = await call(auth, 'PUT', url, body)
    expect([res.statusCode, res.headers['content-type'], res.json().code]).toEqual([
      status,
      'application/problem+json; charset=utf-8',
      code,
    ])
    expect(await store.lastEventSeq()).toBe(before)
    expect((await limits.listTiers()).every((t) => t.updatedAt === null)).toBe(true)
    expect((await limits.getDevice('pump-1')).override).toBeNull()
  })
})
