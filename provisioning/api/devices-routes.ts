import type { FastifyInstance } from 'fastify'
import type { CrlReason } from '../../certs/index.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { MAX_LABELS, parseLabelPairs } from '../authority/labels.ts'
import type { SettingsService } from '../settings/settings-service.ts'
import type { CertificateRecord, DeviceRecord, DeviceStatus } from '../store/registry-store.ts'
import { certificateView } from '../views.ts'
import { actorOf, scoped } from './route-helpers.ts'
import { crlReasonSchema, deviceIdSchema, deviceParams, groupSchema } from './schemas.ts'

/** Who is connected, from the broker (gatehouse.ts passes it in; tests pass a fake). */
export interface Presence {
  isConnected(deviceId: string): boolean
  lastSeen(deviceId: string): Promise<Date | null>
}

export interface DevicesRoutesOptions {
  authority: DeviceAuthority
  settings: SettingsService
  presence: Presence
}

export const MAX_PAGE = 1000
const iso = (d: Date | null): string | null => d?.toISOString() ?? null

/** Read side of a device for apps: registry + presence + settings version, never settings values. */
async function summary(device: DeviceRecord, certificates: CertificateRecord[], opts: DevicesRoutesOptions) {
  const active = certificates.filter((c) => c.status === 'active').sort((a, b) => b.notAfter.getTime() - a.notAfter.getTime())
  const settings = await opts.settings.getDevice(device.id)
  return {
    id: device.id,
    group: device.group,
    tier: device.tier,
    status: device.status,
    labels: await opts.authority.labels(device.id),
    createdAt: device.createdAt.toISOString(),
    updatedAt: device.updatedAt.toISOString(),
    connected: opts.presence.isConnected(device.id),
    lastSeen: iso(await opts.presence.lastSeen(device.id)),
    certificateExpiresAt: iso(active[0]?.notAfter ?? null),
    settings: { version: settings.version, inSync: settings.inSync },
  }
}

/** /v1/devices: list (keyset pages), show, revoke. */
export async function devicesRoutes(app: FastifyInstance, opts: DevicesRoutesOptions): Promise<void> {
  const { authority } = opts

  app.get<{
    Querystring: {
      group?: string
      status?: DeviceStatus
      tier?: string
      label?: string[]
      expiresBefore?: string
      limit: number
      after?: string
    }
  }>(
    '/devices',
    scoped('devices:read', 'devices', 'List devices, ordered by id, one page at a time; every filter given must hold', {
      querystring: {
        type: 'object',
        properties: {
          group: groupSchema,
          status: { type: 'string', enum: ['active', 'disabled', 'revoked'] },
          tier: groupSchema,
          label: {
            type: 'array',
            items: { type: 'string', maxLength: 200 },
            maxItems: MAX_LABELS,
            description: 'key=value; repeat for several (all must hold)',
          },
          expiresBefore: { type: 'string', format: 'date-time', description: 'devices whose active certificate ends before this' },
          limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 },
          after: { ...deviceIdSchema, description: 'the `next` of the previous page' },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            items: { type: 'array', items: { $ref: 'DeviceSummary#' } },
            next: { type: ['string', 'null'], description: 'pass as ?after= for the next page; null on the last page' },
          },
          required: ['items', 'next'],
        },
      },
    }),
    async (request) => {
      const { group, status, tier, label, expiresBefore, limit, after } = request.query
      const page = await authority.listDevices({
        group,
        status,
        tier,
        ...(label !== undefined && { labels: parseLabelPairs(label) }),
        ...(expiresBefore !== undefined && { certificateExpiresBefore: new Date(expiresBefore) }),
        after,
        limit: limit + 1,
      })
      const items = page.slice(0, limit)
      return {
        items: await Promise.all(items.map(async (d) => summary(d, await authority.listCertificates(d.id), opts))),
        next: page.length > limit ? (items.at(-1)?.id ?? null) : null,
      }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/devices/:id',
    scoped('devices:read', 'devices', 'One device, with its certificates', {
      params: deviceParams,
      response: { 200: { $ref: 'DeviceDetails#' } },
    }),
    async (request) => {
      const { device, certificates } = await authority.getDevice(request.params.id)
      return { ...(await summary(device, certificates, opts)), certificates: certificates.map(certificateView) }
    },
  )

  app.post<{ Params: { id: string }; Body: { reason?: CrlReason } }>(
    '/devices/:id/revoke',
    {
      ...scoped('devices:revoke', 'devices', 'Revoke a device and all its certificates, permanently; a connected device is disconnected', {
        params: deviceParams,
        body: {
          type: 'object',
          properties: { reason: { ...crlReasonSchema, default: 'unspecified', description: 'RFC 5280 reason' } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              deviceId: { type: 'string' },
              status: { type: 'string', enum: ['revoked'] },
              reason: crlReasonSchema,
              revokedSerials: { type: 'array', items: { type: 'string' } },
            },
            required: ['deviceId', 'status', 'reason', 'revokedSerials'],
          },
        },
      }),
      // the body is optional: no body means {} (and reason 'unspecified')
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {}
      },
    },
    async (request) => {
      const reason = request.body.reason ?? 'unspecified'
      const { revokedSerials } = await authority.revokeDevice(request.params.id, reason, actorOf(request))
      return { deviceId: request.params.id, status: 'revoked', reason, revokedSerials }
    },
  )
}
