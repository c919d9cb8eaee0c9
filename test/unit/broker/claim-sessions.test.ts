import type { IPublishPacket, ISubackPacket } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import type { ClaimRequest } from '../../../broker/create-mqtt-core.ts'
import { startCore, type ConnectOptions } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'
import type { PacketClient } from '../../helpers/mqtt-packet-stream.ts'

const CLAIM = 'batch-1'
const CLAIM_SERIAL = 'c1a1'
const NONCE_A = 'nonceAAAAAAAAAAAAAAA'
const NONCE_B = 'nonceBBBBBBBBBBBBBBB'

type Harness = Awaited<ReturnType<typeof startCore>>

async function claimCore(opts: Parameters<typeof startCore>[0] = {}) {
  const h = await startCore(opts)
  h.directory.addClaim(CLAIM, CLAIM_SERIAL)
  return h
}

/** A connection with the shared claim certificate (CN claim:batch-1) and clientId claim:<nonce>. */
function connectClaim(h: Harness, nonce: string, o: Partial<ConnectOptions> = {}) {
  return h.connect({ cn: `claim:${CLAIM}`, clientId: `claim:${nonce}`, serial: CLAIM_SERIAL, ...o })
}

async function subscribe(client: PacketClient, messageId: number, ...topics: string[]): Promise<number[]> {
  client.send({ cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: 1 as const })) })
  const suback = (await client.next()) as ISubackPacket
  expect(suback).toMatchObject({ cmd: 'suback', messageId })
  return suback.granted as number[]
}

function publish(client: PacketClient, topic: string, payload: string, messageId?: number): void {
  client.send({
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos: messageId === undefined ? 0 : 1,
    ...(messageId === undefined ? {} : { messageId }),
    retain: false,
    dup: false,
  } as IPublishPacket)
}

describe('claim sessions: authenticate', () => {
  it('accepts a known claim certificate with clientId claim:<nonce>, as a claim session, not a device', async () => {
    const h = await claimCore()
    const deviceEvents: string[] = []
    h.core.onDeviceConnect((c) => deviceEvents.push(`connect:${c.deviceId}`))
    h.core.onDeviceDisconnect((c) => deviceEvents.push(`disconnect:${c.deviceId}`))
    const { client, connack } = await connectClaim(h, NONCE_A)
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(h.directory.claimLookups.map((l) => [l.claimId, l.identity.serial])).toEqual([[CLAIM, CLAIM_SERIAL]])
    expect(h.directory.lookups).toEqual([])
    await waitFor(() => h.logs.some((r) => r.msg === 'claim session connected'), 2000, 'claim session log')
    expect(h.core.connectedDeviceIds()).toEqual([])
    expect(h.core.isConnected(`claim:${NONCE_A}`)).toBe(false)
    expect(h.directory.audits).toEqual([])
    client.send({ cmd: 'disconnect' })
    await client.closed
    await waitFor(() => h.logs.some((r) => r.msg === 'claim session disconnected'), 2000, 'claim disconnect log')
    expect(deviceEvents).toEqual([])
  })

  it.each([
    ['fail/client-id-not-a-claim-nonce', { clientId: 'pump-7' }, 'client-id-mismatch'],
    ['fail/nonce-too-short', { clientId: 'claim:short' }, 'client-id-mismatch'],
    ['fail/nonce-bad-character', { clientId: 'claim:nonce/AAAAAAAAAAAAAAA' }, 'client-id-mismatch'],
    ['fail/persistent-session', { clean: false }, 'persistent-session-not-permitted'],
    [
      'fail/will',
      { will: { topic: `provisioning/${NONCE_A}/request`, payload: Buffer.from('x'), qos: 0 as const, retain: false } },
      'will-not-permitted',
    ],
    ['fail/unknown-claim-certificate', { serial: 'dead01' }, 'unknown-claim'],
    ['fail/cn-names-another-claim', { cn: 'claim:batch-2' }, 'unknown-claim'],
    ['fail/expired', { notAfter: new Date('2025-12-31T00:00:00Z') }, 'expired'],
    ['fail/two-common-names', { cn: [`claim:${CLAIM}`, 'pump-7'] }, 'invalid-common-name'],
  ] as const)('%s: CONNACK 5, one connect.refused audit under claim:<claimId>', async (_name, o, reason) => {
    const h = await claimCore()
    const { client, connack } = await connectClaim(h, NONCE_A, o as Partial<ConnectOptions>)
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 5 })
    await client.closed
    expect(h.directory.audits).toEqual([
      expect.objectContaining({
        action: 'connect.refused',
        subject: expect.stringMatching(/^claim:batch-[12]$/),
        details: expect.objectContaining({ reason }),
      }),
    ])
  })

  it('refuses a second connection with the clientId of a live claim session (no takeover)', async () => {
    const h = await claimCore()
    const first = await connectClaim(h, NONCE_A, { remoteAddress: '192.0.2.1' })
    const second = await connectClaim(h, NONCE_A, { remoteAddress: '192.0.2.2' })
    expect(second.connack).toMatchObject({ returnCode: 5 })
    await second.client.closed
    expect(first.client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('session.takeover')).toEqual([])
    expect(h.directory.auditsFor('connect.refused')).toEqual([
      expect.objectContaining({
        subject: 'claim:batch-1',
        details: expect.objectContaining({ reason: 'client-id-in-use', remoteAddress: '192.0.2.2' }),
      }),
    ])
    // the first one still works: it gets what is published to its response topic
    expect(await subscribe(first.client, 1, `provisioning/${NONCE_A}/response`)).toEqual([1])
    // once it is gone, the clientId is free again
    first.client.send({ cmd: 'disconnect' })
    await first.client.closed
    expect((await connectClaim(h, NONCE_A)).connack).toMatchObject({ returnCode: 0 })
  })

  it('refuses the second of two concurrent connects with one clientId', async () => {
    const h = await claimCore()
    const release = h.directory.holdLookups()
    const first = connectClaim(h, NONCE_A)
    await waitFor(() => h.directory.claimLookups.length === 1, 2000, 'first lookup')
    const second = await connectClaim(h, NONCE_A)
    expect(second.connack).toMatchObject({ returnCode: 5 })
    release()
    expect((await first).connack).toMatchObject({ returnCode: 0 })
    expect(h.directory.claimLookups).toHaveLength(1)
  })

  it('lets many sessions share one claim, each with its own nonce', async () => {
    const h = await claimCore()
    const a = await connectClaim(h, NONCE_A)
    const b = await connectClaim(h, NONCE_B)
    expect([a.connack, b.connack]).toMatchObject([{ returnCode: 0 }, { returnCode: 0 }])
    expect(a.client.isClosed()).toBe(false)
  })

  it('answers CONNACK 3 when the claim lookup fails, and frees the clientId', async () => {
    const h = await claimCore()
    h.directory.failNextLookup()
    const failed = await connectClaim(h, NONCE_A)
    expect(failed.connack).toMatchObject({ returnCode: 3 })
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: 'claim lookup failed', level: 50, code: 'GH_BROKER_DIRECTORY_UNAVAILABLE' }),
    )
    expect((await connectClaim(h, NONCE_A)).connack).toMatchObject({ returnCode: 0 })
  })
})

describe('claim sessions: topic sandbox', () => {
  it('may publish its own request topic, which reaches onClaimRequest only', async () => {
    const h = await claimCore()
    const requests: ClaimRequest[] = []
    const devicePublishes: unknown[] = []
    h.core.onClaimRequest((r) => requests.push(r))
    h.core.onDevicePublish((m) => devicePublishes.push(m))
    const { client } = await connectClaim(h, NONCE_A, { remoteAddress: '192.0.2.7' })
    publish(client, `provisioning/${NONCE_A}/request`, '{"deviceId":"pump-1"}', 5)
    expect(await client.next()).toMatchObject({ cmd: 'puback', messageId: 5 })
    await waitFor(() => requests.length === 1, 2000, 'claim request')
    expect(requests[0]).toMatchObject({
      claimId: CLAIM,
      claimSerial: CLAIM_SERIAL,
      nonce: NONCE_A,
      clientId: `claim:${NONCE_A}`,
      remoteAddress: '192.0.2.7',
    })
    expect(requests[0]?.payload.toString()).toBe('{"deviceId":"pump-1"}')
    expect(devicePublishes).toEqual([])
    expect(h.directory.audits).toEqual([])
  })

  it.each([
    ['fail/another-session-request', `provisioning/${NONCE_B}/request`],
    ['fail/own-response', `provisioning/${NONCE_A}/response`],
    ['fail/device-telemetry', 'devices/pump-7/telemetry'],
    ['fail/device-renewal', 'devices/pump-7/renewal/request'],
    ['fail/sys', '$SYS/x'],
  ])('%s: the session is closed and publish.refused audited under the claim', async (_name, topic) => {
    const h = await claimCore()
    const requests: ClaimRequest[] = []
    h.core.onClaimRequest((r) => requests.push(r))
    const { client } = await connectClaim(h, NONCE_A)
    publish(client, topic, 'x')
    await client.closed
    expect(requests).toEqual([])
    expect(h.directory.auditsFor('publish.refused')).toEqual([
      expect.objectContaining({
        subject: 'claim:batch-1',
        details: expect.objectContaining({ topic, reason: 'not-permitted', clientId: `claim:${NONCE_A}` }),
      }),
    ])
  })

  it('may subscribe only its own response topic: SUBACK 0x80 for the rest, audited subscribe.refused (throttled)', async () => {
    const h = await claimCore()
    const { client } = await connectClaim(h, NONCE_A)
    const granted = await subscribe(
      client,
      1,
      `provisioning/${NONCE_A}/response`,
      `provisioning/${NONCE_B}/response`,
      'provisioning/+/response',
      'provisioning/#',
      `provisioning/${NONCE_A}/request`,
      '#',
      'devices/pump-7/settings',
    )
    expect(granted).toEqual([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80])
    expect(client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('subscribe.refused')).toEqual([
      expect.objectContaining({
        actor: 'broker',
        subject: 'claim:batch-1',
        details: expect.objectContaining({
          topic: `provisioning/${NONCE_B}/response`,
          reason: 'not-permitted',
          clientId: `claim:${NONCE_A}`,
          suppressed: 0,
        }),
      }),
    ])
    h.clock.advance('61s')
    expect(await subscribe(client, 2, `provisioning/${NONCE_B}/response`)).toEqual([0x80])
    expect(h.directory.auditsFor('subscribe.refused').map((a) => a.details?.suppressed)).toEqual([0, 5])
  })

  it('a reply to one session reaches only that session, never another session of the same claim', async () => {
    const h = await claimCore()
    const requests: ClaimRequest[] = []
    h.core.onClaimRequest((r) => requests.push(r))
    const a = await connectClaim(h, NONCE_A)
    const b = await connectClaim(h, NONCE_B)
    expect(await subscribe(a.client, 1, `provisioning/${NONCE_A}/response`)).toEqual([1])
    expect(await subscribe(b.client, 1, `provisioning/${NONCE_A}/response`, `provisioning/${NONCE_B}/response`)).toEqual([0x80, 1])
    publish(a.client, `provisioning/${NONCE_A}/request`, '{}')
    await waitFor(() => requests.length === 1, 2000, 'request')
    expect(await h.core.replyToSession(requests[0]!.sessionId, '{"ok":true}')).toBe(true)
    const got = (await a.client.next()) as IPublishPacket
    expect(got).toMatchObject({ cmd: 'publish', topic: `provisioning/${NONCE_A}/response`, qos: 1, retain: false })
    expect(got.payload.toString()).toBe('{"ok":true}')
    // the marker: b's own answer, sent after a's; a copy of a's would have reached b before it
    publish(b.client, `provisioning/${NONCE_B}/request`, '{}')
    await waitFor(() => requests.length === 2, 2000, "b's request")
    expect(await h.core.replyToSession(requests[1]!.sessionId, '{"marker":true}')).toBe(true)
    expect(await b.client.next()).toMatchObject({ cmd: 'publish', topic: `provisioning/${NONCE_B}/response` })
    expect(b.client.received.filter((p) => p.cmd === 'publish')).toHaveLength(1)
  })
})

describe('claim sessions: lifetime', () => {
  it('claim.revoked closes the live sessions of that claim at once, and no other', async () => {
    const h = await claimCore()
    h.directory.addClaim('batch-2', 'c2a2')
    h.device('pump-7', 'aa01')
    const a = await connectClaim(h, NONCE_A)
    const b = await connectClaim(h, NONCE_B)
    const other = await h.connect({ cn: 'claim:batch-2', clientId: 'claim:nonceCCCCCCCCCCCCCCC', serial: 'c2a2' })
    const device = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    h.directory.revokeClaim(CLAIM)
    await Promise.all([a.client.closed, b.client.closed])
    expect(other.client.isClosed()).toBe(false)
    expect(device.client.isClosed()).toBe(false)
    expect(h.directory.auditsFor('session.closed')).toEqual([
      expect.objectContaining({
        subject: 'claim:batch-1',
        details: expect.objectContaining({ reason: 'claim.revoked', clientId: `claim:${NONCE_A}` }),
      }),
      expect.objectContaining({
        subject: 'claim:batch-1',
        details: expect.objectContaining({ reason: 'claim.revoked', clientId: `claim:${NONCE_B}` }),
      }),
    ])
  })

  it('a claim revoked while a CONNECT of it is looked up: the connect is refused, no session outlives the revocation', async () => {
    const h = await claimCore()
    const release = h.directory.holdLookups()
    const pending = connectClaim(h, NONCE_A)
    await waitFor(() => h.directory.claimLookups.length === 1, 2000, 'the claim lookup in flight')
    h.directory.revokeClaim(CLAIM) // the held answer already judged the claim live
    release()
    expect((await pending).connack).toMatchObject({ cmd: 'connack', returnCode: 5 })
    expect(h.directory.auditsFor('connect.refused')).toMatchObject([
      { subject: `claim:${CLAIM}`, details: { reason: 'invalidated-during-connect', event: 'claim.revoked' } },
    ])
    // the clientId is free again: the refused connect's reservation was released
    h.directory.addClaim('batch-2', 'c2a2')
    const next = await h.connect({ cn: 'claim:batch-2', clientId: `claim:${NONCE_A}`, serial: 'c2a2' })
    expect(next.connack).toMatchObject({ returnCode: 0 })
  })

  it('is closed after limits.claimSessionSeconds by the sweep', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await claimCore({ clock, timers, limits: { claimSessionSeconds: 60, sessionSweepMs: 1000 } })
    const { client } = await connectClaim(h, NONCE_A)
    await timers.advance('59s')
    expect(client.isClosed()).toBe(false)
    await timers.advance('1s')
    await client.closed
    expect(h.directory.auditsFor('session.closed')).toEqual([
      expect.objectContaining({
        subject: 'claim:batch-1',
        details: expect.objectContaining({ reason: 'claim-session-timeout', clientId: `claim:${NONCE_A}` }),
      }),
    ])
  })

  it('is closed at claimSessionSeconds exactly, even with a long sweep interval', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await claimCore({ clock, timers, limits: { claimSessionSeconds: 30, sessionSweepMs: 60_000 } })
    const { client } = await connectClaim(h, NONCE_A)
    await timers.advance('29999ms')
    expect(client.isClosed()).toBe(false)
    await timers.advance('1ms')
    await client.closed
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'claim-session-timeout' })
    expect(timers.pendingDelays()).toEqual([30_000]) // only the sweep is left
  })

  it('is closed when its claim certificate expires first', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const timers = fakeTimers(clock)
    const h = await claimCore({ clock, timers, limits: { claimSessionSeconds: 300, sessionSweepMs: 1000 } })
    const { client } = await connectClaim(h, NONCE_A, { notAfter: new Date('2026-01-01T00:00:30Z') })
    await timers.advance('31s')
    await client.closed
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'certificate-expired' })
  })

  it('is closed on shutdown without a session.closed audit record', async () => {
    const h = await claimCore()
    const { client } = await connectClaim(h, NONCE_A)
    await h.core.close()
    await client.closed
    expect(h.directory.auditsFor('session.closed')).toEqual([])
  })
})
