import type { FastifyInstance } from 'fastify'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { scoped } from './route-helpers.ts'
import { deviceParams } from './schemas.ts'

/** The recent telemetry of each device, from the broker (gatehouse.ts passes its telemetry ring in). */
export interface TelemetrySource {
  /** newest first, at most `limit` */
  recent(deviceId: string, limit: number): unknown[]
}

export interface TelemetryRoutesOptions {
  authority: DeviceAuthority
  telemetry: TelemetrySource
}

const entrySchema = {
  type: 'object',
  properties: {
    receivedAt: { type: 'string', format: 'date-time' },
    subtopic: { type: 'string', description: "the levels below devices/{id}/telemetry ('' for the topic itself)" },
    qos: { type: 'integer', enum: [0, 1, 2] },
    format: { type: 'string', enum: ['json', 'base64'], description: 'json: value is the parsed payload; base64: the payload bytes' },
    value: { description: 'the payload, parsed (json) or as base64' },
  },
  required: ['receivedAt', 'subtopic', 'qos', 'format', 'value'],
} as const

/** /v1/devices/{id}/telemetry: the last messages of a device, from a bounded ring in the broker's memory. */
export async function telemetryRoutes(app: FastifyInstance, opts: TelemetryRoutesOptions): Promise<void> {
  app.get<{ Params: { id: string }; Querystring: { limit: number } }>(
    '/devices/:id/telemetry',
    scoped(
      'telemetry:read',
      'devices',
      "A device's recent telemetry, newest first, as this broker received it since it started (at most the last 20 per device are kept, in memory)",
      {
        params: deviceParams,
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { deviceId: { type: 'string' }, items: { type: 'array', items: entrySchema } },
            required: ['deviceId', 'items'],
          },
        },
      },
    ),
    async (request) => {
      const { device } = await opts.authority.getDevice(request.params.id) // 404 for an unknown device
      return { deviceId: device.id, items: opts.telemetry.recent(device.id, request.query.limit) }
    },
  )
}
