import type { Ajv, ValidateFunction } from 'ajv'
import { newAjv } from '../../certs/index.ts'

/**
 * The JSON Schemas of every device payload (docs/device-protocol.md). The control plane validates what
 * devices send with them (enrollment requests, settings reports: `validatePayload`), and the AsyncAPI
 * document (asyncapi.ts) is generated from them, so the published protocol cannot drift from what is
 * enforced. What the broker sends (settings, insights, throttle and renewal notices, enrollment answers)
 * is described here too; tests check the broker's real messages against these schemas.
 */

const requestId = { type: 'string', maxLength: 64, description: 'optional; echoed in the answer' } as const
const csr = { type: 'string', minLength: 1, description: 'PKCS#10 PEM from a key the device made; CN = its device id' } as const
const isoTime = { type: 'string', format: 'date-time' } as const

export const TELEMETRY_SCHEMA = {
  type: 'object',
  description: 'any JSON object (numbers are read by the AI bridge); non-JSON payloads are accepted and not analysed',
  additionalProperties: true,
} as const

export const SETTINGS_DOCUMENT_SCHEMA = {
  type: 'object',
  required: ['version', 'settings', 'updatedAt'],
  properties: {
    version: { type: 'integer', minimum: 0, description: 'only grows; apply a document only if it is newer than yours' },
    settings: { type: 'object', additionalProperties: true, description: 'the effective settings: fleet < group < device' },
    updatedAt: isoTime,
  },
} as const

export const SETTINGS_REPORT_SCHEMA = {
  type: 'object',
  required: ['settings'],
  properties: {
    version: { type: 'integer', description: 'the version of the document applied' },
    settings: { type: 'object', additionalProperties: true, description: 'what the device applied' },
  },
} as const

export const RENEWAL_REQUEST_SCHEMA = {
  type: 'object',
  required: ['csr'],
  properties: { csr, requestId },
} as const

export const CLAIM_REQUEST_SCHEMA = {
  type: 'object',
  required: ['deviceId', 'csr'],
  properties: {
    deviceId: { type: 'string', minLength: 1, description: 'the id the device asks for (the claim may fix a prefix or a list)' },
    csr,
    token: { type: 'string', maxLength: 256, description: 'the one-time token, when the claim was made with tokens' },
    requestId,
  },
} as const

/** A claim or renewal answer (broker/enrollment.ts). */
export const ENROLLMENT_ANSWER_SCHEMA = {
  oneOf: [
    {
      type: 'object',
      required: ['ok', 'deviceId', 'certificate', 'chain', 'serial', 'notBefore', 'notAfter', 'renewAfter'],
      properties: {
        ok: { const: true },
        requestId,
        deviceId: { type: 'string' },
        certificate: { type: 'string', description: 'the new certificate, PEM' },
        chain: { type: 'string', description: 'the CA chain to trust, PEM' },
        serial: { type: 'string' },
        notBefore: isoTime,
        notAfter: isoTime,
        renewAfter: { ...isoTime, description: 'when the renewal window of the new certificate opens' },
        previousValidUntil: { ...isoTime, description: 'renewal only: the old certificate works until then' },
      },
    },
    {
      type: 'object',
      required: ['ok', 'error'],
      properties: {
        ok: { const: false },
        requestId,
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { type: 'string', description: 'a GH_ code (docs/errors.md)' },
            message: { type: 'string' },
            renewAfter: { ...isoTime, description: 'GH_RENEWAL_TOO_EARLY: when the window opens' },
          },
        },
      },
    },
  ],
} as const

export const RENEWAL_NOTICE_SCHEMA = {
  type: 'object',
  required: ['serial', 'windowOpensAt', 'windowEndsAt', 'notAfter'],
  properties: {
    serial: { type: 'string', description: 'the certificate the session connected with' },
    windowOpensAt: isoTime,
    windowEndsAt: { ...isoTime, description: 'renew before this (the certificate expires)' },
    notAfter: isoTime,
  },
} as const

/** AI insights and throttle notices, both on devices/{id}/insights (broker/ai-bridge/bridge-deps.ts). */
export const INSIGHTS_MESSAGE_SCHEMA = {
  oneOf: [
    {
      type: 'object',
      required: ['type', 'id', 'deviceId', 'provider', 'model', 'summary', 'anomalies', 'at'],
      properties: {
        type: { const: 'insight' },
        id: { type: 'string' },
        deviceId: { type: 'string' },
        provider: { type: 'string' },
        model: { type: 'string' },
        summary: { type: 'string' },
        anomalies: {
          type: 'array',
          items: {
            type: 'object',
            required: ['kind', 'message'],
            properties: { kind: { type: 'string' }, metric: { type: 'string' }, value: { type: 'number' }, message: { type: 'string' } },
          },
        },
        at: isoTime,
        usage: { type: 'object' },
      },
    },
    {
      type: 'object',
      required: ['type', 'deviceId', 'reason', 'retryAt'],
      properties: {
        type: { const: 'throttled' },
        deviceId: { type: 'string' },
        reason: { type: 'string' },
        retryAt: isoTime,
      },
    },
  ],
} as const

// formats (date-time) describe what the broker sends; nothing a device sends carries one (made on first use)
let ajv: Ajv | undefined

/**
 * A validator for one of the schemas above: returns null when `value` conforms, else the first problems
 * ("/csr must be string"), for the coded error the caller throws. Compiled on first use, so that loading
 * the control plane (every CLI command) compiles nothing it does not use.
 */
export function payloadValidator(schema: object): (value: unknown) => string | null {
  let validate: ValidateFunction | undefined
  return (value) => {
    ajv ??= newAjv({ allErrors: true, strict: false, validateFormats: false })
    validate ??= ajv.compile(schema)
    return validate(value)
      ? null
      : (validate.errors ?? [])
          .slice(0, 3)
          .map((e) => `${e.instancePath || '(payload)'} ${e.message ?? 'is invalid'}`)
          .join('; ')
  }
}
