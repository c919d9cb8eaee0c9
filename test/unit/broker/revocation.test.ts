import { describe, expect, it } from 'vitest'
import { startCore } from '../../helpers/broker-harness.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'
import { waitFor } from '../../helpers/wait.ts'

describe('live revocation', () => {
  it.each([
    ['device.revoked', { type: 'device.revoked', deviceId: 'pump-7' }],
    ['device.disabled', { type: 'device.disabled', deviceId: 'pump-7' }],
    ['certificate.revoked (the live serial)', { type: 'certificate.revoked', deviceId: 'pump-7', serial: '00:AA:01' }],
  ] as const)('%s closes the session at once and audits session.closed', async (_name, event) => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    h.device('pump-8', 'bb01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    const b = await h.connect({ clientId: 'pump-8', serial: 'bb01' })
    h.directory.emit(event)
    await a.client.closed
    expect(h.core.isConnected('pump-7')).toBe(false)
    expect(b.client.isClosed()).toBe(false)
    expect(h.core.connectedDeviceIds()).toEqual(['pump-8'])
    expect(h.directory.auditsFor('session.closed')).toEqual([
      {
        actor: 'broker',
        action: 'session.closed',
        subject: 'pump-7',
        details: expect.objectContaining({ reason: event.type, serial: 'aa01' }),
      },
    ])
  })

  it('leaves a session on another certificate of the device alone', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa02')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa02' })
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: '2025-12-31T00:00:00Z' })
    h.directory.emit({ type: 'device.enabled', deviceId: 'pump-7' })
    h.directory.emit({ type: 'certificate.issued', deviceId: 'pump-7', serial: 'aa03' })
    expect(a.client.isClosed()).toBe(false)
    // the marker: an event that does close it; had one of the three above closed it, its reason would show
    h.directory.emit({ type: 'certificate.revoked', deviceId: 'pump-7', serial: 'aa02' })
    await a.client.closed
    expect(h.directory.audits).toEqual([
      {
        actor: 'broker',
        action: 'session.closed',
        subject: 'pump-7',
        details: expect.objectContaining({ reason: 'certificate.revoked', serial: 'aa02' }),
      },
    ])
  })

  it('certificate.superseded keeps the session open until supersededAt, then the sweep closes it', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await startCore({ clock, timers, limits: { sessionSweepMs: 60_000 } })
    h.device('pump-7', 'aa01')
    h.device('pump-8', 'bb01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    const b = await h.connect({ clientId: 'pump-8', serial: 'bb01' })
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: '00:AA:01', supersededAt: '2026-01-02T00:00:00Z' })
    await timers.advance('23h')
    expect(a.client.isClosed()).toBe(false)
    expect(h.directory.audits).toEqual([])
    await timers.advance('1h')
    await a.client.closed
    expect(b.client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('session.closed')).toEqual([
      {
        actor: 'broker',
        action: 'session.closed',
        subject: 'pump-7',
        details: expect.objectContaining({ reason: 'superseded', serial: 'aa01', validUntil: '2026-01-02T00:00:00.000Z' }),
      },
    ])
  })

  it('certificate.superseded closes at once when supersededAt is already past', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: '2026-01-01T00:00:00Z' })
    await a.client.closed
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'superseded', serial: 'aa01' })
  })

  it('a later supersededAt never pushes a session end back', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await startCore({ clock, timers, limits: { sessionSweepMs: 60_000 } })
    h.device('pump-7', 'aa01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: '2026-01-01T01:00:00Z' })
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: '2026-01-03T00:00:00Z' })
    await timers.advance('1h')
    await a.client.closed
  })

  it('an unreadable supersededAt closes the session at once (fail closed)', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: 'soon' })
    await a.client.closed
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'control event with unreadable supersededAt', level: 40 }))
  })

  it('reports the forced close to onDeviceDisconnect with the reason', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    const reasons: string[] = []
    h.core.onDeviceDisconnect((c) => reasons.push(c.reason))
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    await waitFor(() => h.logs.some((r) => r.msg === 'device connected' && r.deviceId === 'pump-7'), 2000, 'the connect (clientReady)')
    h.directory.revokeDevice('pump-7')
    await a.client.closed
    expect(reasons).toEqual(['device.revoked'])
  })

  it('disconnectDevice closes a session with an operator reason', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    expect(h.core.disconnectDevice('pump-7', 'operator')).toBe(true)
    await a.client.closed
    expect(h.core.disconnectDevice('pump-7', 'operator')).toBe(false)
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'operator' })
  })

  it('stops listening to the directory on close', async () => {
    const h = await startCore()
    expect(h.directory.listenerCount()).toBe(1)
    await h.core.close()
    expect(h.directory.listenerCount()).toBe(0)
  })
})
