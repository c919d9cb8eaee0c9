import type { FastifyInstance } from 'fastify'
import type { CrlReason } from '../../certs/index.ts'
import type { DeviceAuthority, IssuedCertificate } from '../authority/device-authority.ts'
import type { BulkAction, DeviceSelector, DeviceUpdate } from '../authority/device-changes.ts'
import { MAX_BULK } from '../authority/device-changes.ts'
import type { DeviceRecord, Labels } from '../store/registry-store.ts'
import { labelledDeviceView } from '../views.ts'
import { actorOf, scoped } from './route-helpers.ts'
import { crlReasonSchema, deviceIdSchema, deviceParams, groupSchema, labelPatchSchema, labelsSchema } from './schemas.ts'
import { MERGE_PATCH } from './settings-routes.ts'
import { addJsonBodyParser } from './json-body.ts'

export interface DeviceLifecycleRoutesOptions {
  authority: DeviceAuthority
}

const csrSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 16_384,
  description: 'PKCS#10 CSR, PEM; its subject CN must be the device id',
} as const
const validDaysSchema = {
  type: 'integer',
  minimum: 1,
  maximum: 3650,
  description: 'certificate validity in days (default from config)',
} as const
const statusSchema = { type: 'string', enum: ['active', 'disabled', 'revoked'] } as const

const deviceViewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    group: { type: ['string', 'null'] },
    tier: { type: 'string' },
    status: statusSchema,
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'group', 'tier', 'status', 'labels', 'createdAt', 'updatedAt'],
} as const

const issuedSchema = {
  type: 'object',
  properties: {
    deviceId: { type: 'string' },
    serial: { type: 'string' },
    fingerprint: { type: 'string' },
    notBefore: { type: 'string', format: 'date-time' },
    notAfter: { type: 'string', format: 'date-time' },
    certificatePem: { type: 'string' },
    chainPem: { type: 'string', description: 'the issuing CA(s) and the root, PEM: what the device trusts' },
    device: deviceViewSchema,
  },
  required: ['deviceId', 'serial', 'fingerprint', 'notBefore', 'notAfter', 'certificatePem', 'chainPem'],
} as const

const selectorSchema = {
  type: 'object',
  description: 'which devices: every criterion given must hold; at least one is required',
  properties: { group: groupSchema, labels: labelsSchema, status: statusSchema, tier: groupSchema },
  additionalProperties: false,
} as const

const bulkResultSchema = {
  type: 'object',
  properties: {
    action: { type: 'string' },
    dryRun: { type: 'boolean' },
    count: { type: 'integer' },
    deviceIds: { type: 'array', items: { type: 'string' }, description: 'changed (or, in a dry run, would be), in id order' },
  },
  required: ['action', 'dryRun', 'count', 'deviceIds'],
} as const

interface BulkBody {
  selector: DeviceSelector
  max: number
  dryRun?: boolean
  reason?: CrlReason
  to?: { group?: string | null; tier?: string }
}

function issuedView(issued: IssuedCertificate, device?: DeviceRecord, labels?: Labels) {
  return {
    deviceId: issued.deviceId,
    serial: issued.serial,
    fingerprint: issued.fingerprint,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
    certificatePem: issued.certificatePem,
    chainPem: issued.chainPem,
    ...(device && { device: labelledDeviceView(device, labels ?? {}) }),
  }
}

/**
 * The device lifecycle for apps (a factory line, a fleet app): register from a CSR, renew from a CSR,
 * disable, enable, change group, tier and labels, and bulk actions by selector. Each route calls the
 * same authority as the CLI, so the audit entries are the same, with `apikey:<name>` as the actor.
 * (Revoking one device is POST /v1/devices/{id}/revoke in devices-routes.ts.)
 */
export async function deviceLifecycleRoutes(app: FastifyInstance, opts: DeviceLifecycleRoutesOptions): Promise<void> {
  const { authority } = opts
  const view = async (d: DeviceRecord) => labelledDeviceView(d, await authority.labels(d.id))

  app.post<{ Body: { id: string; csr: string; group?: string; tier?: string; labels?: Labels; validDays?: number } }>(
    '/devices',
    scoped('devices:write', 'devices', 'Register a device from a CSR: Gatehouse signs its public key and never sees the private key', {
      body: {
        type: 'object',
        properties: {
          id: deviceIdSchema,
          csr: csrSchema,
          group: groupSchema,
          tier: groupSchema,
          labels: labelsSchema,
          validDays: validDaysSchema,
        },
        required: ['id', 'csr'],
        additionalProperties: false,
      },
      response: { 201: issuedSchema },
    }),
    async (request, reply) => {
      const { id, csr, group, tier, labels, validDays } = request.body
      const issued = await authority.createDevice(
        { id, csr, group: group ?? null, ...(tier && { tier }), ...(labels && { labels }), ...(validDays && { validDays }) },
        actorOf(request),
      )
      reply.code(201).header('location', `/v1/devices/${encodeURIComponent(id)}`)
      return issuedView(issued, issued.device, await authority.labels(id))
    },
  )

  app.post<{ Params: { id: string }; Body: { csr: string; validDays?: number } }>(
    '/devices/:id/renew',
    scoped(
      'devices:write',
      'devices',
      'A new certificate for a device from a CSR; the previous one keeps working for the renewal overlap',
      {
        params: deviceParams,
        body: {
          type: 'object',
          properties: { csr: csrSchema, validDays: validDaysSchema },
          required: ['csr'],
          additionalProperties: false,
        },
        response: { 200: issuedSchema },
      },
    ),
    async (request) => {
      const { csr, validDays } = request.body
      return issuedView(
        await authority.renewDevice(request.params.id, { csr, ...(validDays && { validDays }), via: 'api' }, actorOf(request)),
      )
    },
  )

  for (const verb of ['disable', 'enable'] as const) {
    app.post<{ Params: { id: string } }>(
      `/devices/:id/${verb}`,
      scoped(
        'devices:write',
        'devices',
        verb === 'disable'
          ? 'Disable a device (reversible): it cannot connect, and a connected device is disconnected'
          : 'Enable a disabled device: it may connect again',
        { params: deviceParams, response: { 200: deviceViewSchema } },
      ),
      async (request) => {
        const { id } = request.params
        return view(
          await (verb === 'disable' ? authority.disableDevice(id, actorOf(request)) : authority.enableDevice(id, actorOf(request))),
        )
      },
    )
  }

  await app.register(async (patches) => {
    addJsonBodyParser(patches, MERGE_PATCH)
    patches.patch<{ Params: { id: string }; Body: DeviceUpdate }>(
      '/devices/:id',
      scoped('devices:write', 'devices', "Change a device's group, tier or labels (a label set to null is removed)", {
        params: deviceParams,
        consumes: [MERGE_PATCH, 'application/json'],
        body: {
          type: 'object',
          properties: { group: { anyOf: [groupSchema, { type: 'null' }] }, tier: groupSchema, labels: labelPatchSchema },
          additionalProperties: false,
          minProperties: 1,
        },
        response: { 200: deviceViewSchema },
      }),
      async (request) => view(await authority.updateDevice(request.params.id, request.body, actorOf(request))),
    )
  })

  for (const kind of ['disable', 'enable', 'revoke', 'move'] as const) {
    app.post<{ Body: BulkBody }>(
      `/bulk/devices/${kind}`,
      scoped(kind === 'revoke' ? 'devices:revoke' : 'devices:write', 'devices', bulkSummary[kind], {
        body: {
          type: 'object',
          properties: {
            selector: selectorSchema,
            max: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_BULK,
              description: 'the most devices this may change; more -> 409 GH_BULK_OVER_MAX, nothing changed',
            },
            dryRun: { type: 'boolean', default: false, description: 'report what would change, change nothing' },
            ...(kind === 'revoke' && { reason: { ...crlReasonSchema, default: 'unspecified' } }),
            ...(kind === 'move' && {
              to: {
                type: 'object',
                properties: { group: { anyOf: [groupSchema, { type: 'null' }] }, tier: groupSchema },
                additionalProperties: false,
                minProperties: 1,
              },
            }),
          },
          required: ['selector', 'max', ...(kind === 'move' ? ['to'] : [])],
          additionalProperties: false,
        },
        response: { 200: bulkResultSchema },
      }),
      async (request) => {
        const { selector, max, dryRun, reason, to } = request.body
        const action: BulkAction =
          kind === 'revoke' ? { kind, reason: reason ?? 'unspecified' } : kind === 'move' ? { kind, ...to } : { kind }
        const result = await authority.bulk({ selector, action, max, dryRun: dryRun === true }, actorOf(request))
        return { ...result, count: result.deviceIds.length }
      },
    )
  }
}

const bulkSummary = {
  disable: 'Disable every active device a selector matches',
  enable: 'Enable every disabled device a selector matches',
  revoke: 'Revoke every device a selector matches, permanently; connected ones are disconnected',
  move: 'Move every device a selector matches to another group and/or tier',
} as const
