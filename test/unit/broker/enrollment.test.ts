import type { IPublishPacket, Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { attachEnrollment } from '../../../broker/index.ts'
import {
  MAX_QUEUED_REQUESTS,
  type ClaimRequestContext,
  type EnrollmentAnswer,
  type EnrollmentService,
  type RenewalRequestContext,
  requestIdOf,
} from '../../../broker/enrollment.ts'
import { createRecordingLogger, startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { PacketClient } from '../../helpers/mqtt-packet-stream.ts'

const CLAIM = 'batch-1'
const CLAIM_SERIAL = 'c1a1'
const NONCE_A = 'nonceAAAAAAAAAAAAAAA'
const NONCE_B = 'nonceBBBBBBBBBBBBBBB'

type Call =
  | { kind: 'claim'; context: ClaimRequestContext; payload: string }
  | { kind: 'renew'; context: RenewalRequestContext; payload: string }

/**
 * An enrollment service made of plain functions: it records each call and answers through `answer`,
 * which a test may replace (to hold an answer, or to fail).
 */
function recordingService() {
  const calls: Call[] = []
  const held: (() => void)[] = []
  const state = {
    calls,
    held,
    answer: async (call: Call): Promise<EnrollmentAnswer> => {
      const body = JSON.parse(call.payload) as { requestId?: string }
      return { ok: true, requestId: body.requestId, kind: call.kind }
    },
    /** from now on, each answer waits until the test calls held.shift()() */
    hold() {
      const inner = state.answer
      state.answer = async (call) => {
        await new Promise<void>((resolve) => held.push(resolve))
        return inner(call)
      }
    },
  }
  const service: EnrollmentService = {
    claim: (context, payload) => {
      const call: Call = { kind: 'claim', context, payload: Buffer.from(payload).toString() }
      calls.push(call)
      return state.answer(call)
    },
    renew: (context, payload) => {
      const call: Call = { kind: 'renew', context, payload: Buffer.from(payload).toString() }
      calls.push(call)
      return state.answer(call)
    },
  }
  return { service, state }
}

async function setup() {
  const h = await startCore()
  h.directory.addClaim(CLAIM, CLAIM_SERIAL)
  h.device('pump-7', 'aa01')
  const { service, state } = recordingService()
  const { log, records } = createRecordingLogger()
  const detach = attachEnrollment(h.core, { service, log })
  return { h, state, detach, logs: records }
}

async function claimSession(h: Awaited<ReturnType<typeof startCore>>, nonce: string): Promise<PacketClient> {
  const { client, connack } = await h.connect({ cn: `claim:${CLAIM}`, clientId: `claim:${nonce}`, serial: CLAIM_SERIAL })
  expect(connack).toMatchObject({ returnCode: 0 })
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `provisioning/${nonce}/response`, qos: 1 }] })
  expect(await client.next()).toMatchObject({ cmd: 'suback', granted: [1] })
  return client
}

function send(client: PacketClient, topic: string, body: unknown): void {
  client.send({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 0, retain: false, dup: false })
}

const publishes = (client: PacketClient) => client.received.filter((p): p is IPublishPacket => p.cmd === 'publish')
const answers = (client: PacketClient) => publishes(client).map((p) => JSON.parse(p.payload.toString()) as EnrollmentAnswer)

async function nextPublish(client: PacketClient): Promise<IPublishPacket> {
  for (;;) {
    const p: Packet = await client.next()
    if (p.cmd === 'publish') return p
  }
}

describe('attachEnrollment', () => {
  it("hands a claim request to the service and publishes its answer, QoS 1, not retained, on that session's response topic", async () => {
    const { h, state } = await setup()
    const a = await claimSession(h, NONCE_A)
    const b = await claimSession(h, NONCE_B)
    send(a, `provisioning/${NONCE_A}/request`, { deviceId: 'pump-1', requestId: 'r1' })
    const got = await nextPublish(a)
    expect(got).toMatchObject({ topic: `provisioning/${NONCE_A}/response`, qos: 1, retain: false })
    expect(JSON.parse(got.payload.toString())).toEqual({ ok: true, requestId: 'r1', kind: 'claim' })
    expect(state.calls).toEqual([
      {
        kind: 'claim',
        context: { claimId: CLAIM, claimSerial: CLAIM_SERIAL, nonce: NONCE_A, clientId: `claim:${NONCE_A}`, remoteAddress: '192.0.2.10' },
        payload: '{"deviceId":"pump-1","requestId":"r1"}',
      },
    ])
    // the marker: b's own answer, sent after a's; a copy of a's would have reached b before it
    send(b, `provisioning/${NONCE_B}/request`, { requestId: 'b-marker' })
    expect(JSON.parse((await nextPublish(b)).payload.toString())).toMatchObject({ requestId: 'b-marker' })
    expect(publishes(b)).toHaveLength(1)
  })

  it('hands a device renewal request to the service and answers on devices/{id}/renewal/response', async () => {
    const { h, state } = await setup()
    const { client } = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/pump-7/renewal/response', qos: 1 }] })
    expect(await client.next()).toMatchObject({ cmd: 'suback', granted: [1] })
    send(client, 'devices/pump-7/renewal/request', { csr: 'x', requestId: 'r2' })
    const got = await nextPublish(client)
    expect(got).toMatchObject({ topic: 'devices/pump-7/renewal/response', qos: 1, retain: false })
    expect(JSON.parse(got.payload.toString())).toEqual({ ok: true, requestId: 'r2', kind: 'renew' })
    expect(state.calls).toEqual([
      {
        kind: 'renew',
        context: { deviceId: 'pump-7', serial: 'aa01', remoteAddress: '192.0.2.10' },
        payload: '{"csr":"x","requestId":"r2"}',
      },
    ])
  })

  it('keeps one request in flight per session; the others wait, in order', async () => {
    const { h, state } = await setup()
    state.hold()
    const a = await claimSession(h, NONCE_A)
    const b = await claimSession(h, NONCE_B)
    // the marker: a listener after enrollment's own, which calls the service (or queues) synchronously
    let requests = 0
    h.core.onClaimRequest(() => void requests++)
    for (const id of ['a1', 'a2', 'a3']) send(a, `provisioning/${NONCE_A}/request`, { requestId: id })
    send(b, `provisioning/${NONCE_B}/request`, { requestId: 'b1' })
    await waitFor(() => requests === 4, 2000, 'four requests')
    // one per session: a1 and b1, not a2
    expect(state.calls.map((c) => JSON.parse(c.payload).requestId)).toEqual(['a1', 'b1'])
    // a call and its held answer are recorded together (synchronously), so this ends with every answer released
    while (state.calls.length < 4 || state.held.length > 0) {
      await waitFor(() => state.held.length > 0, 2000, 'a held answer')
      state.held.shift()!()
    }
    await waitFor(() => answers(a).length === 3, 2000, 'three answers')
    expect(answers(a).map((x) => x.requestId)).toEqual(['a1', 'a2', 'a3'])
    expect(answers(b).map((x) => x.requestId)).toEqual(['b1'])
  })

  it(`answers GH_ENROLLMENT_BUSY beyond ${MAX_QUEUED_REQUESTS} waiting requests, echoing requestId`, async () => {
    const { h, state } = await setup()
    state.hold()
    const a = await claimSession(h, NONCE_A)
    for (let i = 0; i < MAX_QUEUED_REQUESTS + 2; i++) send(a, `provisioning/${NONCE_A}/request`, { requestId: `r${i}` })
    await waitFor(() => answers(a).length === 1, 2000, 'the busy answer')
    expect(answers(a)).toEqual([
      { ok: false, requestId: `r${MAX_QUEUED_REQUESTS + 1}`, error: { code: 'GH_ENROLLMENT_BUSY', message: expect.any(String) } },
    ])
    expect(state.calls).toHaveLength(1)
  })

  it('logs a flood of busy refusals once per requester and address, each still answered', async () => {
    const { h, state, logs } = await setup()
    state.hold()
    const a = await claimSession(h, NONCE_A)
    const extra = 20
    for (let i = 0; i < MAX_QUEUED_REQUESTS + 1 + extra; i++) send(a, `provisioning/${NONCE_A}/request`, { requestId: `r${i}` })
    await waitFor(() => answers(a).length === extra, 2000, 'the busy answers')
    expect(answers(a).every((x) => (x.error as { code: string }).code === 'GH_ENROLLMENT_BUSY')).toBe(true)
    expect(logs.filter((r) => r.msg === 'enrollment request refused')).toHaveLength(1)
  })

  it('answers GH_ENROLLMENT_UNAVAILABLE when the service rejects, and logs it at error', async () => {
    const h = await startCore()
    h.directory.addClaim(CLAIM, CLAIM_SERIAL)
    const service: EnrollmentService = {
      claim: async () => {
        throw new Error('database is locked')
      },
      renew: async () => ({ ok: true }),
    }
    const { log, records } = createRecordingLogger()
    attachEnrollment(h.core, { service, log })
    const a = await claimSession(h, NONCE_A)
    send(a, `provisioning/${NONCE_A}/request`, { requestId: 'r1' })
    const got = await nextPublish(a)
    expect(JSON.parse(got.payload.toString())).toEqual({
      ok: false,
      requestId: 'r1',
      error: { code: 'GH_ENROLLMENT_UNAVAILABLE', message: expect.any(String) },
    })
    expect(got.payload.toString()).not.toContain('database is locked')
    expect(records).toContainEqual(
      expect.objectContaining({ msg: 'enrollment service failed', level: 50, code: 'GH_ENROLLMENT_UNAVAILABLE', claimId: CLAIM }),
    )
  })

  it('drops an answer whose session ended, even when a new session took the same clientId', async () => {
    const { h, state, logs } = await setup()
    state.hold()
    const first = await claimSession(h, NONCE_A)
    send(first, `provisioning/${NONCE_A}/request`, { requestId: 'r1' })
    await waitFor(() => state.calls.length === 1, 2000, 'the call')
    first.send({ cmd: 'disconnect' })
    await first.closed
    const second = await claimSession(h, NONCE_A)
    state.held.shift()!()
    await waitFor(() => logs.some((r) => r.msg === 'enrollment answer dropped: the session ended'), 2000, 'dropped log')
    // the marker: the second session's own answer; the dropped one would have come before it
    send(second, `provisioning/${NONCE_A}/request`, { requestId: 'r2' })
    await waitFor(() => state.held.length === 1, 2000, 'the second call')
    state.held.shift()!()
    expect(JSON.parse((await nextPublish(second)).payload.toString())).toMatchObject({ requestId: 'r2' })
    expect(publishes(second)).toHaveLength(1)
  })

  it('stops answering once detached', async () => {
    const { h, state, detach } = await setup()
    const a = await claimSession(h, NONCE_A)
    detach()
    // the marker: a listener of the core, told of the request where enrollment would have been
    let requests = 0
    h.core.onClaimRequest(() => void requests++)
    send(a, `provisioning/${NONCE_A}/request`, { requestId: 'r1' })
    await waitFor(() => requests === 1, 2000, 'the request')
    expect(state.calls).toEqual([])
  })
})

describe('requestIdOf', () => {
  it.each([
    ['ok/string', '{"requestId":"abc"}', 'abc'],
    ['fail/too-long', JSON.stringify({ requestId: 'x'.repeat(65) }), undefined],
    ['fail/number', '{"requestId":5}', undefined],
    ['fail/not-json', 'nope', undefined],
    ['fail/array', '[1]', undefined],
    ['fail/null', 'null', undefined],
  ])('%s', (_name, payload, expected) => {
    expect(requestIdOf(Buffer.from(payload))).toBe(expected)
  })
})
