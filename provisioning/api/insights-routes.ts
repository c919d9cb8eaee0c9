import type { FastifyInstance } from 'fastify'
import type { AiUsageService } from '../ai-usage/ai-usage-service.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { scoped } from './route-helpers.ts'
import { deviceParams } from './schemas.ts'

export interface InsightsRoutesOptions {
  authority: DeviceAuthority
  aiUsage: Pick<AiUsageService, 'listInsights' | 'usageFor'>
}

/** /v1/devices/{id}/insights and /usage: what the AI bridge told a device, and what it cost. */
export async function insightsRoutes(app: FastifyInstance, opts: InsightsRoutesOptions): Promise<void> {
  app.get<{ Params: { id: string }; Querystring: { limit: number } }>(
    '/devices/:id/insights',
    scoped('insights:read', 'insights', "A device's latest insights, newest first", {
      params: deviceParams,
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 } },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: { items: { type: 'array', items: { type: 'object', additionalProperties: true } } },
          required: ['items'],
        },
      },
    }),
    async (request) => {
      const { device } = await opts.authority.getDevice(request.params.id) // 404 for an unknown device
      return { items: await opts.aiUsage.listInsights(device.id, request.query.limit) }
    },
  )

  app.get<{ Params: { id: string }; Querystring: { days: number } }>(
    '/devices/:id/usage',
    scoped('insights:read', 'insights', "A device's AI requests and tokens per UTC day, oldest first, ending today", {
      params: deviceParams,
      querystring: {
        type: 'object',
        properties: { days: { type: 'integer', minimum: 1, maximum: 366, default: 30 } },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', additionalProperties: true } },
    }),
    async (request) => {
      const { device } = await opts.authority.getDevice(request.params.id)
      return opts.aiUsage.usageFor(device.id, request.query.days)
    },
  )
}
