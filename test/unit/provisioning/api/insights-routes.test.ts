import { describe, expect, it } from 'vitest'
import { apiHarness } from './api-harness.ts'

describe('GET /v1/devices/{id}/insights and /usage', () => {
  it("returns a device's insights newest first and its usage per day, and 404 for an unknown device", async () => {
    const h = await apiHarness()
    await h.authority.createDevice({ id: 'pump-1' }, 'op')
    for (const [i, at] of ['2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z'].entries()) {
      await h.aiUsage.append({
        type: 'insight',
        id: `ins-${i}`,
        deviceId: 'pump-1',
        provider: 'local',
        model: 'local-stats',
        summary: `summary ${i}`,
        anomalies: [],
        at,
        usage: { requests: 1, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      })
    }
    await h.aiUsage.add('pump-1', '2026-01-01', 2, 120)
    const key = await h.keyWith('insights:read')
    const insights = await h.call(key, 'GET', '/v1/devices/pump-1/insights?limit=5')
    expect(insights.statusCode).toBe(200)
    expect(insights.json().items.map((i: { id: string }) => i.id)).toEqual(['ins-1', 'ins-0'])
    const usage = await h.call(key, 'GET', '/v1/devices/pump-1/usage?days=2')
    expect(usage.statusCode).toBe(200)
    expect(usage.json()).toMatchObject({ deviceId: 'pump-1', to: '2026-01-01', total: { requests: 2, tokens: 120 } })
    expect(usage.json().days).toHaveLength(2)
    const missing = await h.call(key, 'GET', '/v1/devices/ghost/insights')
    expect(missing.statusCode).toBe(404)
    expect(missing.json().code).toBe('GH_DEVICE_NOT_FOUND')
    const bad = await h.call(key, 'GET', '/v1/devices/pump-1/usage?days=9999')
    expect(bad.statusCode).toBe(400)
  })
})
