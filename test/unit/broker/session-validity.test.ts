import type { Client } from 'aedes'
import { describe, expect, it } from 'vitest'
import { claimSessionEnded, createClaimSessionRegistry, type ClaimSession } from '../../../broker/claim-sessions.ts'
import { deviceSessionEnded, endAt, sessionEnd } from '../../../broker/sessions.ts'
import { claimGrants } from '../../../broker/topics.ts'
import { startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'

const d = (iso: string) => new Date(iso)
const NOT_AFTER = d('2026-06-01T00:00:00Z')

describe('sessionEnd (a new device session)', () => {
  it.each([
    ['ok/no-overlap: notAfter', NOT_AFTER, null, { validUntil: NOT_AFTER, endReason: 'certificate-expired' }],
    [
      'ok/directory-validUntil-earlier: superseded',
      d('2026-02-01T00:00:00Z'),
      null,
      { validUntil: d('2026-02-01T00:00:00Z'), endReason: 'superseded' },
    ],
    [
      'ok/directory-validUntil-later: notAfter wins',
      d('2027-01-01T00:00:00Z'),
      null,
      { validUntil: NOT_AFTER, endReason: 'certificate-expired' },
    ],
    [
      'ok/announced-during-lookup',
      NOT_AFTER,
      d('2026-01-02T00:00:00Z'),
      { validUntil: d('2026-01-02T00:00:00Z'), endReason: 'superseded' },
    ],
    [
      'ok/earliest-wins',
      d('2026-02-01T00:00:00Z'),
      d('2026-03-01T00:00:00Z'),
      { validUntil: d('2026-02-01T00:00:00Z'), endReason: 'superseded' },
    ],
    ['ok/no-date-from-directory: notAfter', undefined, null, { validUntil: NOT_AFTER, endReason: 'certificate-expired' }],
    ['ok/invalid-date-from-directory: notAfter', new Date('x'), null, { validUntil: NOT_AFTER, endReason: 'certificate-expired' }],
  ] as const)('%s', (_name, validUntil, supersededAt, expected) => {
    expect(sessionEnd(NOT_AFTER, validUntil as Date | undefined, supersededAt)).toEqual(expected)
  })
})

describe('endAt / deviceSessionEnded', () => {
  const current = { validUntil: NOT_AFTER, endReason: 'certificate-expired' as const }

  it('brings the end forward, never back', () => {
    expect(endAt(current, d('2026-01-02T00:00:00Z'))).toEqual({ validUntil: d('2026-01-02T00:00:00Z'), endReason: 'superseded' })
    expect(endAt(current, d('2027-01-01T00:00:00Z'))).toBe(current)
  })

  it.each([
    ['ok/before', '2026-05-31T23:59:59.999Z', null],
    ['fail/at', '2026-06-01T00:00:00Z', 'certificate-expired'],
    ['fail/after', '2026-06-02T00:00:00Z', 'certificate-expired'],
  ])('%s', (_name, now, expected) => {
    expect(deviceSessionEnded(current, d(now))).toBe(expected)
  })
})

describe('claimSessionEnded', () => {
  const s = { expiresAt: d('2026-01-01T00:05:00Z'), validUntil: d('2026-02-01T00:00:00Z') }
  it.each([
    ['ok/inside', s, '2026-01-01T00:04:59Z', null],
    ['fail/timeout', s, '2026-01-01T00:05:00Z', 'claim-session-timeout'],
    [
      'fail/certificate-first',
      { expiresAt: s.expiresAt, validUntil: d('2026-01-01T00:01:00Z') },
      '2026-01-01T00:01:00Z',
      'certificate-expired',
    ],
    ['ok/certificate-first-not-yet', { expiresAt: s.expiresAt, validUntil: d('2026-01-01T00:01:00Z') }, '2026-01-01T00:00:59Z', null],
  ])('%s', (_name, session, now, expected) => {
    expect(claimSessionEnded(session, d(now))).toBe(expected)
  })
})

describe('createClaimSessionRegistry', () => {
  const session = (clientId: string, closed = false): ClaimSession => ({
    id: 1,
    claimId: 'batch-1',
    serial: 'c1',
    fingerprint: 'f',
    nonce: clientId.slice('claim:'.length),
    clientId,
    remoteAddress: null,
    client: { closed } as Client,
    grants: claimGrants(clientId.slice('claim:'.length)),
    expiresAt: d('2026-01-01T00:05:00Z'),
    validUntil: NOT_AFTER,
    closedBy: null,
  })

  it('holds a clientId from reserve to remove, and frees it when the session closed', () => {
    const r = createClaimSessionRegistry()
    expect(r.reserve('claim:a', 'batch-1')).not.toBeNull()
    expect(r.reserve('claim:a', 'batch-1')).toBeNull() // a connect in progress
    const s = session('claim:a')
    r.add(s)
    expect(r.reserve('claim:a', 'batch-1')).toBeNull() // live
    s.client = { closed: true } as Client
    expect(r.reserve('claim:a', 'batch-1')).not.toBeNull() // closed, not yet removed
    r.release('claim:a')
    r.remove(s)
    expect(r.get('claim:a')).toBeUndefined()
    expect(r.reserve('claim:a', 'batch-1')).not.toBeNull()
  })

  it('remove forgets only the current session of a clientId', () => {
    const r = createClaimSessionRegistry()
    const old = session('claim:a', true)
    r.add(old)
    const next = session('claim:a')
    r.add(next)
    r.remove(old)
    expect(r.get('claim:a')).toBe(next)
  })
})

describe('session sweep', () => {
  it('closes a device session when its certificate expires (fixed clock past validUntil)', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await startCore({ clock, timers, limits: { sessionSweepMs: 5000 } })
    h.device('pump-7', 'aa01')
    h.device('pump-8', 'bb01')
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01', notAfter: d('2026-01-01T00:00:30Z') })
    const b = await h.connect({ clientId: 'pump-8', serial: 'bb01' })
    await timers.advance('29s')
    expect(a.client.isClosed()).toBe(false)
    await timers.advance('6s')
    await a.client.closed
    expect(b.client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('session.closed')).toEqual([
      expect.objectContaining({
        subject: 'pump-7',
        details: expect.objectContaining({ reason: 'certificate-expired', validUntil: '2026-01-01T00:00:30.000Z' }),
      }),
    ])
  })

  it('closes a device session at the validUntil its lookup answered (end of a renewal overlap)', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await startCore({ clock, timers, limits: { sessionSweepMs: 5000 } })
    h.device('pump-7', 'aa01')
    h.directory.supersedeCertificate('aa01', d('2026-01-01T00:01:00Z')) // before the connect: only the lookup carries it
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    await timers.advance('55s')
    expect(a.client.isClosed()).toBe(false)
    await timers.advance('5s')
    await a.client.closed
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'superseded' })
  })

  it('applies a supersede announced while the lookup was in flight', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await startCore({ clock, timers, limits: { sessionSweepMs: 5000 } })
    h.device('pump-7', 'aa01')
    const release = h.directory.holdLookups()
    const pending = h.connect({ clientId: 'pump-7', serial: 'aa01' })
    await waitFor(() => h.directory.lookups.length === 1, 2000, 'the lookup')
    // announced, but the (stale) answer will not carry it
    h.directory.emit({ type: 'certificate.superseded', deviceId: 'pump-7', serial: 'aa01', supersededAt: '2026-01-01T00:00:10Z' })
    release()
    const { client, connack } = await pending
    expect(connack).toMatchObject({ returnCode: 0 })
    await timers.advance('10s')
    await client.closed
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'superseded' })
  })

  it('refuses a connect whose validUntil is already past', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    h.directory.supersedeCertificate('aa01', d('2026-01-01T00:00:10Z'))
    const release = h.directory.holdLookups() // the answer (active until 00:00:10) is judged, then held
    const pending = h.connect({ clientId: 'pump-7', serial: 'aa01' })
    await waitFor(() => h.directory.lookups.length === 1, 2000, 'lookup')
    h.clock.advance('11s')
    release()
    const { connack } = await pending
    expect(connack).toMatchObject({ returnCode: 5 })
    expect(h.directory.auditsFor('connect.refused')[0]?.details).toMatchObject({ reason: 'superseded' })
  })

  it('stops its timer when the core closes', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await startCore({ clock, timers })
    expect(timers.pendingDelays()).toEqual([5000])
    await h.core.close()
    expect(timers.pending()).toBe(0)
  })
})
