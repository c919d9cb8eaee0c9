import type { Logger } from 'pino'
import { capStrings, createEventThrottle, systemClock, type Clock } from '../certs/index.ts'
import type { MqttCore, Unsubscribe } from './create-mqtt-core.ts'
import { EnrollmentBusy, EnrollmentUnavailable } from './errors.ts'

/** What goes on the response topic, as JSON (docs/device-lifecycle.md). */
export interface EnrollmentAnswer {
  ok: boolean
  /** ok: deviceId, certificate, chain, serial, notBefore, notAfter, renewAfter[, previousValidUntil]; not ok: error: { code, message } */
  [field: string]: unknown
}

export interface ClaimRequestContext {
  claimId: string
  claimSerial: string
  nonce: string
  clientId: string
  remoteAddress: string | null
}

export interface RenewalRequestContext {
  deviceId: string
  /** the serial of the certificate the requesting session connected with */
  serial: string
  remoteAddress: string | null
}

/**
 * What the broker asks of the control plane for enrollment over MQTT; the broker owns this interface
 * and provisioning's enrollment service matches it structurally (docs/conventions.md §3).
 */
export interface EnrollmentService {
  /** Never rejects for a refusal: answers { ok: false, error } and audits the refusal itself. Payload = raw MQTT payload bytes. */
  claim(context: ClaimRequestContext, payload: Uint8Array): Promise<EnrollmentAnswer>
  renew(context: RenewalRequestContext, payload: Uint8Array): Promise<EnrollmentAnswer>
}

/** Requests of one session that may wait behind the one in flight; more are answered GH_ENROLLMENT_BUSY. */
export const MAX_QUEUED_REQUESTS = 4

/** requestId as docs/device-lifecycle.md defines it: a string of at most 64 characters, echoed. */
const MAX_REQUEST_ID_LENGTH = 64

export type EnrollmentCore = Pick<MqttCore, 'onClaimRequest' | 'onRenewalRequest' | 'replyToSession' | 'isSessionLive'>

interface Job {
  sessionId: number
  payload: Buffer
  /** log fields naming the requester */
  fields: Record<string, unknown>
  /** who asked, from where: the key of the throttled busy log */
  requester: string
  call: () => Promise<EnrollmentAnswer>
}

/**
 * Hands each claim request (provisioning/<nonce>/request) and renewal request
 * (devices/<id>/renewal/request) to the enrollment service and publishes its answer, as JSON, QoS 1,
 * not retained, to the response topic of the session that asked, and only while that session is
 * still the live one (MqttCore.replyToSession).
 *
 * One request per session is in flight; up to MAX_QUEUED_REQUESTS more wait, in order, and further
 * ones are answered GH_ENROLLMENT_BUSY at once (logged at most once per interval per requester and
 * address). Requests still waiting when their session ends are
 * dropped. A service that rejects (an unexpected failure: refusals are answers) is logged at error and
 * the device gets GH_ENROLLMENT_UNAVAILABLE. Payloads are never logged.
 */
export function attachEnrollment(
  core: EnrollmentCore,
  deps: { service: EnrollmentService; log: Logger; clock?: Clock },
  options: { auditIntervalMs?: number; maxTrackedKeys?: number } = {},
): Unsubscribe {
  const log = deps.log.child({ module: 'broker.enrollment' })
  // busy refusals are logged at most once per interval per requester and address (as every refusal)
  const throttle = createEventThrottle(
    { intervalMs: options.auditIntervalMs ?? 60_000, maxKeys: options.maxTrackedKeys ?? 100_000 },
    deps.clock ?? systemClock,
  )
  const { service } = deps
  /** per session: the request in flight first, then those waiting */
  const queues = new Map<number, Job[]>()
  let detached = false

  function enqueue(job: Job): void {
    if (detached) return
    let queue = queues.get(job.sessionId)
    if (!queue) {
      queue = []
      queues.set(job.sessionId, queue)
    }
    if (queue.length > MAX_QUEUED_REQUESTS) {
      const err = new EnrollmentBusy(MAX_QUEUED_REQUESTS)
      const hit = throttle.hit(`enrollment.busy:${job.requester}`)
      if (hit.emit) log.info({ ...capStrings(job.fields), code: err.code, suppressed: hit.suppressed }, 'enrollment request refused')
      void send(job, refusal(err, job.payload))
      return
    }
    queue.push(job)
    if (queue.length === 1) void drain(job.sessionId, queue)
  }

  async function drain(sessionId: number, queue: Job[]): Promise<void> {
    for (let job = queue[0]; job !== undefined && !detached; job = queue[0]) {
      if (core.isSessionLive(sessionId)) await send(job, await ask(job))
      queue.shift()
    }
    if (queues.get(sessionId) === queue) queues.delete(sessionId)
  }

  async function ask(job: Job): Promise<EnrollmentAnswer> {
    try {
      const answer = await job.call()
      if (typeof answer !== 'object' || answer === null || typeof answer.ok !== 'boolean') {
        throw new TypeError('enrollment service answered something that is not { ok: boolean, … }')
      }
      return answer
    } catch (err) {
      const unavailable = new EnrollmentUnavailable({ cause: err })
      log.error({ err, ...job.fields, code: unavailable.code }, 'enrollment service failed')
      return refusal(unavailable, job.payload)
    }
  }

  async function send(job: Job, answer: EnrollmentAnswer): Promise<void> {
    try {
      const sent = await core.replyToSession(job.sessionId, JSON.stringify(answer))
      const code = answer.ok ? undefined : (answer.error as { code?: unknown } | undefined)?.code
      if (sent) log.debug({ ...job.fields, ok: answer.ok, code }, 'enrollment answered')
      else log.info({ ...job.fields, ok: answer.ok, code }, 'enrollment answer dropped: the session ended')
    } catch (err) {
      log.warn({ err, ...job.fields }, 'enrollment answer not sent')
    }
  }

  const offClaim = core.onClaimRequest((r) => {
    const context: ClaimRequestContext = {
      claimId: r.claimId,
      claimSerial: r.claimSerial,
      nonce: r.nonce,
      clientId: r.clientId,
      remoteAddress: r.remoteAddress,
    }
    enqueue({
      sessionId: r.sessionId,
      payload: r.payload,
      fields: { claimId: r.claimId, clientId: r.clientId, remoteAddress: r.remoteAddress },
      requester: `claim:${r.claimId}@${r.remoteAddress}`,
      call: () => service.claim(context, r.payload),
    })
  })
  const offRenewal = core.onRenewalRequest((r) => {
    const context: RenewalRequestContext = { deviceId: r.deviceId, serial: r.serial, remoteAddress: r.remoteAddress }
    enqueue({
      sessionId: r.sessionId,
      payload: r.payload,
      fields: { deviceId: r.deviceId, serial: r.serial, remoteAddress: r.remoteAddress },
      requester: `${r.deviceId}@${r.remoteAddress}`,
      call: () => service.renew(context, r.payload),
    })
  })

  return () => {
    detached = true
    offClaim()
    offRenewal()
    queues.clear()
  }
}

/** An answer the broker gives itself, echoing the request's requestId when it has a readable one. */
function refusal(err: { code: string; message: string }, payload: Buffer): EnrollmentAnswer {
  const requestId = requestIdOf(payload)
  return { ok: false, ...(requestId !== undefined ? { requestId } : {}), error: { code: err.code, message: err.message } }
}

export function requestIdOf(payload: Buffer): string | undefined {
  try {
    const parsed: unknown = JSON.parse(payload.toString('utf8'))
    if (typeof parsed !== 'object' || parsed === null || !('requestId' in parsed)) return undefined
    const id = parsed.requestId
    return typeof id === 'string' && id.length <= MAX_REQUEST_ID_LENGTH ? id : undefined
  } catch {
    return undefined
  }
}
