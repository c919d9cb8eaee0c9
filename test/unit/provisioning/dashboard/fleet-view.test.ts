import { describe, expect, it } from 'vitest'
import { createFleetView } from '../../../../provisioning/dashboard/fleet-view.ts'
import { apiHarness } from '../api/api-harness.ts'

/** The fleet view over the API harness's real control plane (SQLite in memory, fixed clock). */
async function fleetHarness(options = {}) {
  const h = await apiHarness()
  const connected = new Set<string>()
  const presence = { isConnected: (id: string) => connected.has(id), lastSeen: async () => null }
  const throttled: Record<string, number> = {}
  const busiest = { since: '2025-12-31T23:55:00.000Z', devices: [{ deviceId: 'a-1', messagesIn: 7 }], untracked: 0 }
  const signals = {
    connectedDeviceIds: () => [...connected],
    onChange: () => () => {},
    busiestDevices: () => busiest,
    aiThrottledByTier: () => throttled,
    connectionHistory: (id: string) =>
      id === 'p-1'
        ? [{ at: '2026-01-01T00:00:00.000Z', event: 'connect' as const, remoteAddress: '10.0.0.7', serial: '01', reason: null }]
        : [],
  }
  const aiBudget = async (_id: string, tier: string) => (tier === 'premium' ? { dailyRequests: 50, dailyTokens: 5000 } : null)
  const fleet = createFleetView({ ...h, presence, signals, aiBudget }, options)
  const create = (id: string, extra: { group?: string; tier?: string; validDays?: number } = {}) =>
    h.authority.createDevice({ id, ...extra }, 'operator:test')
  return { ...h, fleet, connected, create, throttled, busiest }
}

describe('dashboard fleet view', () => {
  it('counts devices by status and lists who is connected, with refused connections and recent audit', async () => {
    const { fleet, create, authority, connected, store, clock } = await fleetHarness()
    for (const id of ['a-1', 'a-2', 'a-3', 'a-4']) await create(id)
    await authority.disableDevice('a-2', 'operator:test')
    await authority.revokeDevice('a-3', 'unspecified', 'operator:test')
    connected.add('a-1')
    await store.appendAudit({ at: clock.now(), actor: 'broker', action: 'connect.refused', subject: 'a-3', details: { reason: 'revoked' } })
    const o = await fleet.overview()
    expect(o.devices).toEqual({ registered: 4, active: 2, disabled: 1, revoked: 1, connected: 1 })
    expect(o.connectedDevices).toEqual(['a-1'])
    expect(o.refusedConnections.map((e) => [e.subject, e.details])).toEqual([['a-3', '{"reason":"revoked"}']])
    expect(o.recentAudit[0]?.action).toBe('connect.refused')
    expect(o.busiestDevices).toEqual({ since: '2025-12-31T23:55:00.000Z', devices: [{ deviceId: 'a-1', messagesIn: 7 }], untracked: 0 })
  })

  it('buckets active certificates by week of expiry, with expired and later ones apart', async () => {
    const { fleet, create, clock } = await fleetHarness({ scanTtlMs: 0 })
    await create('soon', { validDays: 3 })
    await create('week-2', { validDays: 17 })
    await create('year', { validDays: 365 })
    await create('late', { validDays: 400 })
    await create('gone', { validDays: 1 })
    clock.advance('2d')
    const { expiry, scanned } = (await fleet.overview()).fleet
    expect(scanned).toBe(5)
    expect(expiry.expired).toBe(1)
    expect(expiry.later).toBe(1)
    expect(expiry.counts[0]).toBe(1) // 'soon': 1 day left
    expect(expiry.counts[2]).toBe(1) // 'week-2': 15 days left
    expect(expiry.counts[51]).toBe(1) // 'year': 363 days left
    expect(expiry.counts.reduce((a, b) => a + b, 0)).toBe(3)
  })

  it('shows settings sync per group and AI usage today and throttles per tier', async () => {
    const { fleet, create, settings, aiUsage, throttled } = await fleetHarness()
    await create('p-1', { group: 'pumps', tier: 'premium' })
    await create('p-2', { group: 'pumps' })
    await create('m-1')
    await settings.report('p-1', { version: (await settings.getDevice('p-1')).version, settings: {} })
    await aiUsage.add('p-1', '2026-01-01', 3, 120)
    Object.assign(throttled, { standard: 2, edge: 1 }) // 'edge': throttled devices, none active now
    const { settingsByGroup, aiByTier } = (await fleet.overview()).fleet
    expect(settingsByGroup).toEqual([
      { group: '(none)', inSync: 0, outOfSync: 1 },
      { group: 'pumps', inSync: 1, outOfSync: 1 },
    ])
    expect(aiByTier).toEqual([
      { tier: 'edge', devices: 0, requests: 0, tokens: 0, throttled: 1 },
      { tier: 'premium', devices: 1, requests: 3, tokens: 120, throttled: 0 },
      { tier: 'standard', devices: 2, requests: 0, tokens: 0, throttled: 2 },
    ])
  })

  it('reuses the fleet scan for scanTtlMs, then scans again', async () => {
    const { fleet, create, clock } = await fleetHarness({ scanTtlMs: 30_000 })
    await create('x-1')
    expect((await fleet.overview()).fleet.scanned).toBe(1)
    await create('x-2')
    expect((await fleet.overview()).fleet.scanned).toBe(1)
    expect((await fleet.overview()).devices.registered).toBe(2) // counts are always current
    clock.advance('30s')
    expect((await fleet.overview()).fleet.scanned).toBe(2)
  })

  it('stops the scan at maxScanDevices and says so', async () => {
    const { fleet, create } = await fleetHarness({ maxScanDevices: 2 })
    for (const id of ['s-1', 's-2', 's-3']) await create(id)
    expect((await fleet.overview()).fleet).toMatchObject({ scanned: 2, truncated: true })
  })

  it("shows a device's certificates, presence, settings delta and AI usage against its budget", async () => {
    const { fleet, create, connected, aiUsage, settings } = await fleetHarness()
    const issued = await create('p-1', { tier: 'premium' })
    connected.add('p-1')
    await settings.patchDevice('p-1', { rate: 5 }, { actor: 'operator:test' })
    await aiUsage.add('p-1', '2026-01-01', 2, 80)
    const d = await fleet.device('p-1')
    expect(d.certificates.map((c) => c.serial)).toEqual([issued.serial])
    expect(d.connected).toBe(true)
    expect(d.connections).toEqual([
      { at: '2026-01-01T00:00:00.000Z', event: 'connect', remoteAddress: '10.0.0.7', serial: '01', reason: null },
    ])
    expect(d.settings).toMatchObject({ desired: { rate: 5 }, delta: { rate: 5 }, inSync: false })
    expect(d.usage).toEqual({
      today: { requests: 2, tokens: 80 },
      last30Days: { requests: 2, tokens: 80 },
      budget: { dailyRequests: 50, dailyTokens: 5000 },
    })
    expect(d.audit.map((e) => e.action)).toContain('device.created')
    await expect(fleet.device('nobody')).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_NOT_FOUND' }))
  })
})
