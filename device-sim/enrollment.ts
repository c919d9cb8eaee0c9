import type { MqttClient } from 'mqtt'
import { createKeyAndCsr, cryptoRandom, type KeyAlgorithm, type KeyAndCsr, type Random } from '../certs/index.ts'
import { AnswerRefused, SimAnswerInvalid } from './errors.ts'
import type { DeviceBundle } from './fleet.ts'
import { awaitAnswer, connectClient, endClient, subscribeOrThrow, type BrokerAddress } from './mqtt-session.ts'

/**
 * The device side of docs/device-lifecycle.md: provisioning by claim certificate, and the renewal
 * request a connected device makes. Topics are built here with the same strings as broker/topics.ts.
 */

export const provisioningRequestTopic = (nonce: string) => `provisioning/${nonce}/request`
export const provisioningResponseTopic = (nonce: string) => `provisioning/${nonce}/response`
export const renewalRequestTopic = (deviceId: string) => `devices/${deviceId}/renewal/request`
export const renewalResponseTopic = (deviceId: string) => `devices/${deviceId}/renewal/response`
/** The broker's notice that the certificate is in its renewal window (broker/renewal-notice.ts). */
export const renewalNoticeTopic = (deviceId: string) => `devices/${deviceId}/renewal/notice`

/** What a claim holds: the shared claim certificate and key, and the CA chain (claims/<claimId>/). */
export interface ClaimBundle {
  cert: string
  key: string
  ca: string
}

/** What an accepted claim or renewal answer says about the new certificate. */
export interface IssuedAnswer {
  certificate: string
  chain: string
  serial: string
  notBefore: string
  notAfter: string
  renewAfter: string | null
  previousValidUntil: string | null
}

export interface ClaimResult extends IssuedAnswer {
  /** the device's bundle: its new certificate, the key made for it, the chain */
  bundle: DeviceBundle
}

export interface ClaimOptions {
  claim: ClaimBundle
  broker: BrokerAddress
  /** the device id to ask for (the CSR's CN) */
  deviceId: string
  /** a one-time token, when the claim requires them */
  token?: string
  keyAlgorithm?: KeyAlgorithm
  /** the whole exchange after CONNACK, default 30000 ms */
  timeoutMs?: number
  connectTimeoutMs?: number
  random?: Random
}

/** A claim session's clientId nonce: 24 characters of [A-Za-z0-9_-]. */
export function claimNonce(random: Random = cryptoRandom): string {
  return Buffer.from(random.bytes(18)).toString('base64url')
}

/**
 * Provisions a device by claim: connects with the claim certificate as `claim:<nonce>` (clean session,
 * no will), subscribes to its response topic, sends the request with a CSR from a new key, waits for
 * the answer (bounded), disconnects. Resolves with the device's bundle; rejects with the answer's own
 * code (AnswerRefused: GH_CLAIM_USED_UP, GH_DEVICE_EXISTS, ...) or a GH_SIM_* code.
 */
export async function claimDevice(options: ClaimOptions): Promise<ClaimResult> {
  const random = options.random ?? cryptoRandom
  const nonce = claimNonce(random)
  const requestId = Buffer.from(random.bytes(9)).toString('base64url')
  const key = await createKeyAndCsr({ commonName: options.deviceId, ...(options.keyAlgorithm && { keyAlgorithm: options.keyAlgorithm }) })
  const claimAsBundle: DeviceBundle = { deviceId: `claim:${nonce}`, ...options.claim }
  const client = await connectClient(claimAsBundle, options.broker, {
    clientId: `claim:${nonce}`,
    clean: true,
    ...(options.connectTimeoutMs !== undefined && { connectTimeoutMs: options.connectTimeoutMs }),
  })
  try {
    const response = provisioningResponseTopic(nonce)
    const answered = awaitAnswer(
      client,
      response,
      options.timeoutMs ?? 30_000,
      (a) => a.requestId === undefined || a.requestId === requestId,
    )
    answered.catch(() => {}) // handled below; the publish may fail first
    // bounded by the answer (its timeout, or the connection closing): mqtt.js keeps an unacknowledged
    // SUBSCRIBE or QoS 1 PUBLISH for a reconnect, so awaiting it alone never ends if the broker dies
    await Promise.race([subscribeOrThrow(client, [response]), answered])
    const request = { deviceId: options.deviceId, csr: key.csrPem, requestId, ...(options.token !== undefined && { token: options.token }) }
    await Promise.race([client.publishAsync(provisioningRequestTopic(nonce), JSON.stringify(request), { qos: 1 }), answered])
    const answer = await answered
    const issued = issuedFrom(answer, response)
    return { ...issued, bundle: { deviceId: options.deviceId, cert: issued.certificate, key: key.privateKeyPem, ca: issued.chain } }
  } finally {
    await endClient(client)
  }
}

export interface RenewalOptions {
  keyAlgorithm?: KeyAlgorithm
  /** the key and CSR of an earlier request that got no answer: asking again with the same key gets the same certificate */
  key?: KeyAndCsr
  /** after the request is sent, default 30000 ms */
  timeoutMs?: number
  requestId?: string
}

export interface RenewalResult extends IssuedAnswer {
  /** the new key (never the old one: GH_RENEWAL_KEY_REUSED) */
  key: KeyAndCsr
}

/**
 * Asks for a new certificate on a connected device session: a new key and CSR (CN = the device id),
 * subscribe to devices/<id>/renewal/response, publish on devices/<id>/renewal/request, wait (bounded).
 * Rejects with the answer's code (GH_RENEWAL_TOO_EARLY carries the answer: error.renewAfter).
 */
export async function requestRenewal(client: MqttClient, deviceId: string, options: RenewalOptions = {}): Promise<RenewalResult> {
  const key =
    options.key ?? (await createKeyAndCsr({ commonName: deviceId, ...(options.keyAlgorithm && { keyAlgorithm: options.keyAlgorithm }) }))
  const response = renewalResponseTopic(deviceId)
  try {
    const requestId = options.requestId ?? Buffer.from(cryptoRandom.bytes(9)).toString('base64url')
    const answered = awaitAnswer(
      client,
      response,
      options.timeoutMs ?? 30_000,
      (a) => a.requestId === undefined || a.requestId === requestId,
    )
    answered.catch(() => {}) // handled below; the publish may fail first
    // bounded by the answer, as in claimDevice: a dead broker must not leave the request pending forever
    await Promise.race([subscribeOrThrow(client, [response]), answered])
    await Promise.race([
      client.publishAsync(renewalRequestTopic(deviceId), JSON.stringify({ csr: key.csrPem, requestId }), { qos: 1 }),
      answered,
    ])
    return { ...issuedFrom(await answered, response), key }
  } catch (err) {
    // the key travels with the failure, so a request that got no answer can be repeated with it
    throw Object.assign(err as Error, { key })
  }
}

/** The fields of an `ok: true` answer, or the refusal as AnswerRefused. */
export function issuedFrom(answer: Record<string, unknown>, topic: string): IssuedAnswer {
  if (answer.ok !== true) {
    const error = (typeof answer.error === 'object' && answer.error !== null ? answer.error : {}) as { code?: unknown; message?: unknown }
    const code = typeof error.code === 'string' ? error.code : 'GH_SIM_ANSWER_INVALID'
    throw new AnswerRefused(code, typeof error.message === 'string' ? error.message : `refused without a message on ${topic}`, answer)
  }
  const str = (k: string) => (typeof answer[k] === 'string' ? (answer[k] as string) : null)
  const certificate = str('certificate')
  const chain = str('chain')
  if (!certificate?.includes('BEGIN CERTIFICATE') || !chain?.includes('BEGIN CERTIFICATE'))
    throw new SimAnswerInvalid(topic, 'no PEM "certificate" and "chain"')
  return {
    certificate,
    chain,
    serial: str('serial') ?? '',
    notBefore: str('notBefore') ?? '',
    notAfter: str('notAfter') ?? '',
    renewAfter: str('renewAfter'),
    previousValidUntil: str('previousValidUntil'),
  }
}
