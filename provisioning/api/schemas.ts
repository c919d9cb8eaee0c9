import { CRL_REASONS, DEVICE_ID_PATTERN_SOURCE } from '../../certs/index.ts'
import { LABEL_KEY_PATTERN_SOURCE, LABEL_VALUE_PATTERN_SOURCE, MAX_LABELS } from '../authority/labels.ts'
import { GROUP_PATTERN } from '../settings/settings-service.ts'

// JSON schemas shared by the routes. They validate requests, shape responses (fast-json-stringify
// drops any field not listed, so a response carries nothing by accident) and become the OpenAPI document.

export const deviceIdSchema = {
  type: 'string',
  pattern: DEVICE_ID_PATTERN_SOURCE,
  description: 'device id (= certificate CN = MQTT clientId)',
} as const
export const groupSchema = { type: 'string', pattern: GROUP_PATTERN.source } as const
const labelValueSchema = { type: 'string', pattern: LABEL_VALUE_PATTERN_SOURCE } as const
export const labelsSchema = {
  type: 'object',
  description: `key=value labels (at most ${MAX_LABELS}); a selector matches devices that carry every one`,
  propertyNames: { pattern: LABEL_KEY_PATTERN_SOURCE },
  additionalProperties: labelValueSchema,
  maxProperties: MAX_LABELS,
} as const
/** a change to labels: a value sets the label, null removes it (JSON merge patch) */
export const labelPatchSchema = {
  type: 'object',
  propertyNames: { pattern: LABEL_KEY_PATTERN_SOURCE },
  additionalProperties: { anyOf: [labelValueSchema, { type: 'null' }] },
  maxProperties: MAX_LABELS * 2,
} as const
export const crlReasonSchema = { type: 'string', enum: [...CRL_REASONS] } as const

export const deviceParams = { type: 'object', properties: { id: deviceIdSchema }, required: ['id'], additionalProperties: false } as const
export const groupParams = { type: 'object', properties: { group: groupSchema }, required: ['group'], additionalProperties: false } as const

export const ifMatchHeaders = {
  type: 'object',
  properties: {
    'if-match': {
      type: 'string',
      description: 'the ETag of the version the change is based on, e.g. "3" (412 if it is no longer current)',
    },
  },
} as const

const dateTime = { type: 'string', format: 'date-time' } as const
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const
const freeObject = { type: 'object', additionalProperties: true } as const

/** RFC 9457 problem details, the body of every error response (application/problem+json). */
export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  properties: {
    type: { type: 'string', description: "https://gatehouse.dev/errors/<code> (see docs/errors.md) or 'about:blank'" },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', description: 'GH_... error code' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      description: 'validation errors only: which field, and what is wrong with it',
      items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } }, required: ['field', 'message'] },
    },
  },
  required: ['type', 'title', 'status', 'code', 'requestId'],
} as const

export const deviceSettingsViewSchema = {
  $id: 'DeviceSettingsView',
  type: 'object',
  description: 'a device\'s effective settings (fleet < group < device) and what it last reported; secret values read "[secret]"',
  properties: {
    deviceId: { type: 'string' },
    version: { type: 'integer' },
    desired: freeObject,
    reported: {
      type: ['object', 'null'],
      properties: { version: { type: ['integer', 'null'] }, settings: freeObject, at: nullableDateTime },
    },
    delta: freeObject,
    inSync: { type: 'boolean' },
    updatedAt: dateTime,
  },
  required: ['deviceId', 'version', 'desired', 'reported', 'delta', 'inSync', 'updatedAt'],
} as const

export const layerViewSchema = {
  $id: 'LayerView',
  type: 'object',
  description: 'one settings layer (fleet defaults or a group); revision is its ETag; secret values read "[secret]"',
  properties: {
    scope: { type: 'string' },
    document: freeObject,
    revision: { type: 'integer' },
    updatedAt: nullableDateTime,
    updatedBy: { type: ['string', 'null'] },
    devicesChanged: { type: 'integer', description: 'after a PATCH: how many devices got a new settings version' },
  },
  required: ['scope', 'document', 'revision', 'updatedAt', 'updatedBy'],
} as const

const deviceProperties = {
  id: { type: 'string' },
  group: { type: ['string', 'null'] },
  tier: { type: 'string' },
  status: { type: 'string', enum: ['active', 'disabled', 'revoked'] },
  labels: { type: 'object', additionalProperties: { type: 'string' } },
  createdAt: dateTime,
  updatedAt: dateTime,
  connected: { type: 'boolean', description: 'connected to this broker now' },
  lastSeen: nullableDateTime,
  certificateExpiresAt: { ...nullableDateTime, description: 'notAfter of the latest active certificate' },
  settings: { type: 'object', properties: { version: { type: 'integer' }, inSync: { type: 'boolean' } }, required: ['version', 'inSync'] },
} as const

export const deviceSummarySchema = {
  $id: 'DeviceSummary',
  type: 'object',
  properties: deviceProperties,
  required: Object.keys(deviceProperties),
} as const

export const certificateSchema = {
  $id: 'Certificate',
  type: 'object',
  properties: {
    serial: { type: 'string' },
    fingerprint: { type: 'string', description: 'SHA-256 of the DER certificate, hex' },
    notBefore: dateTime,
    notAfter: dateTime,
    status: { type: 'string', enum: ['active', 'superseded', 'revoked'] },
    supersededAt: { ...nullableDateTime, description: 'for a superseded certificate: when it stops (stopped) working' },
    revokedAt: nullableDateTime,
    revocationReason: { type: ['string', 'null'] },
  },
  required: ['serial', 'fingerprint', 'notBefore', 'notAfter', 'status'],
} as const

export const deviceDetailsSchema = {
  $id: 'DeviceDetails',
  type: 'object',
  properties: { ...deviceProperties, certificates: { type: 'array', items: { $ref: 'Certificate#' } } },
  required: [...Object.keys(deviceProperties), 'certificates'],
} as const

export const sharedSchemas = [
  problemSchema,
  deviceSettingsViewSchema,
  layerViewSchema,
  deviceSummarySchema,
  certificateSchema,
  deviceDetailsSchema,
]

/** Error responses every authenticated route can give, for the OpenAPI document and the serializer. */
export const problemResponses = {
  '4xx': { description: 'problem details (RFC 9457)', content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } },
  '5xx': {
    description: 'problem details (RFC 9457); the detail names the requestId to look up in the Gatehouse log',
    content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
  },
} as const
