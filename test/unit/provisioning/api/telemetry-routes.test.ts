import { describe, expect, it } from 'vitest'
import { apiHarness } from './api-harness.ts'

describe('GET /v1/devices/{id}/telemetry', () => {
  it("returns a device's recent telemetry up to ?limit, needs telemetry:read, 404 for an unknown device", async () => {
    const h = await apiHarness()
    await h.authority.createDevice({ id: 'pump-1' }, 'op')
    const entries = [3, 2, 1].map((v) => ({
      receivedAt: `2026-01-01T00:00:0${v}.000Z`,
      subtopic: '',
      qos: 1,
      format: 'json',
      value: { v },
    }))
    h.telemetryOf.set('pump-1', entries)
    const key = await h.keyWith('telemetry:read')
    const all = await h.call(key, 'GET', '/v1/devices/pump-1/telemetry')
    expect(all.statusCode).toBe(200)
    expect(all.json()).toEqual({ deviceId: 'pump-1', items: entries })
    const two = await h.call(key, 'GET', '/v1/devices/pump-1/telemetry?limit=2')
    expect(two.json().items.map((e: { value: { v: number } }) => e.value.v)).toEqual([3, 2])
    for (const limit of ['0', '101', 'x']) {
      const bad = await h.call(key, 'GET', `/v1/devices/pump-1/telemetry?limit=${limit}`)
      expect(bad.statusCode).toBe(400)
    }
    const missing = await h.call(key, 'GET', '/v1/devices/ghost/telemetry')
    expect(missing.statusCode).toBe(404)
    expect(missing.json().code).toBe('GH_DEVICE_NOT_FOUND')
    const wrongScope = await h.call(await h.keyWith('devices:read'), 'GET', '/v1/devices/pump-1/telemetry')
    expect(wrongScope.statusCode).toBe(403)
  })
})
