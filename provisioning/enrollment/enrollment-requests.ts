import { createHash, webcrypto } from 'node:crypto'
import { parseCertificatePem, parseCsr } from '../../certs/index.ts'
import { CLAIM_REQUEST_SCHEMA, payloadValidator, RENEWAL_REQUEST_SCHEMA } from '../device-protocol/payload-schemas.ts'
import { ClaimRequestInvalid, RenewalRequestInvalid } from '../errors.ts'

/** Largest request payload read: a CSR (at most 64 KiB, an RSA-4096 one is under 2 KiB) plus a little. */
export const MAX_ENROLLMENT_PAYLOAD_BYTES = 80 * 1024
const MAX_REQUEST_ID_LENGTH = 64
const MAX_TOKEN_LENGTH = 256

export interface ClaimRequest {
  deviceId: string
  csr: string
  token?: string
  requestId?: string
}

export interface RenewalRequestBody {
  csr: string
  requestId?: string
}

/** The payload as a JSON object, or null (the requestId of an unreadable payload cannot be echoed). */
function jsonObject(payload: Uint8Array): Record<string, unknown> | null {
  if (payload.byteLength > MAX_ENROLLMENT_PAYLOAD_BYTES) return null
  try {
    const value: unknown = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** The requestId to echo: a string of at most 64 characters, else none. */
export function requestIdOf(payload: Uint8Array): string | undefined {
  const id = jsonObject(payload)?.requestId
  return typeof id === 'string' && id.length <= MAX_REQUEST_ID_LENGTH ? id : undefined
}

const claimProblems = payloadValidator(CLAIM_REQUEST_SCHEMA)
const renewalProblems = payloadValidator(RENEWAL_REQUEST_SCHEMA)

/** The payload, checked against its schema (the one the AsyncAPI document publishes), then the rules below. */
function shape(
  obj: Record<string, unknown> | null,
  payload: Uint8Array,
  fail: (why: string) => Error,
  problems: (value: unknown) => string | null,
): Record<string, unknown> {
  if (obj === null)
    throw fail(
      payload.byteLength > MAX_ENROLLMENT_PAYLOAD_BYTES ? `larger than ${MAX_ENROLLMENT_PAYLOAD_BYTES} bytes` : 'not a JSON object',
    )
  const problem = problems(obj)
  if (problem !== null) throw fail(problem)
  const { requestId } = obj
  if (requestId !== undefined && (typeof requestId !== 'string' || requestId.length > MAX_REQUEST_ID_LENGTH))
    throw fail('requestId must be a string of at most 64 characters')
  if (typeof obj.csr !== 'string' || obj.csr.length === 0) throw fail('csr must be a PEM string')
  return obj
}

export function parseClaimRequest(payload: Uint8Array): ClaimRequest {
  const fail = (why: string) => new ClaimRequestInvalid(why)
  const obj = shape(jsonObject(payload), payload, fail, claimProblems)
  if (typeof obj.deviceId !== 'string' || obj.deviceId.length === 0) throw fail('deviceId must be a string')
  if (obj.token !== undefined && (typeof obj.token !== 'string' || obj.token.length > MAX_TOKEN_LENGTH))
    throw fail('token must be a string')
  return {
    deviceId: obj.deviceId,
    csr: obj.csr as string,
    ...(obj.token !== undefined && { token: obj.token as string }),
    ...(obj.requestId !== undefined && { requestId: obj.requestId as string }),
  }
}

export function parseRenewalRequest(payload: Uint8Array): RenewalRequestBody {
  const obj = shape(jsonObject(payload), payload, (why) => new RenewalRequestInvalid(why), renewalProblems)
  return { csr: obj.csr as string, ...(obj.requestId !== undefined && { requestId: obj.requestId as string }) }
}

const sha256 = (bytes: Uint8Array | ArrayBuffer): string => createHash('sha256').update(new Uint8Array(bytes)).digest('hex')

/** The CSR, checked (GH_CSR_*, its CN must be deviceId), and the SHA-256 of its public key (SPKI DER). */
export async function csrKeyOf(csr: string, deviceId: string): Promise<string> {
  const parsed = await parseCsr(csr, { expectedDeviceId: deviceId })
  return sha256(await webcrypto.subtle.exportKey('spki', parsed.publicKey))
}

/** SHA-256 of a certificate's public key (SPKI DER). */
export function certificateKeyOf(pem: string): string {
  return sha256(parseCertificatePem(pem).publicKey.rawData)
}
