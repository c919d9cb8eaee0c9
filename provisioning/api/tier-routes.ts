import type { FastifyInstance } from 'fastify'
import type { LimitsService } from '../limits/index.ts'
import { actorOf, scoped } from './route-helpers.ts'
import { deviceIdSchema, deviceParams } from './schemas.ts'

export interface TierRoutesOptions {
  limits: LimitsService
}

const tierNameSchema = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$', description: 'a configured tier' } as const
const tierParams = { type: 'object', properties: { name: tierNameSchema }, required: ['name'], additionalProperties: false } as const
const limitValues = { type: 'object', additionalProperties: true, description: 'a limits document: broker and ai values' } as const
const nullableText = { type: ['string', 'null'] } as const

const tierView = {
  type: 'object',
  properties: { tier: { type: 'string' }, limits: limitValues, updatedAt: nullableText, updatedBy: nullableText },
  required: ['tier', 'limits', 'updatedAt', 'updatedBy'],
} as const
const deviceLimitsView = {
  type: 'object',
  properties: {
    deviceId: deviceIdSchema,
    tier: { type: 'string' },
    override: { ...limitValues, type: ['object', 'null'] },
    tierLimits: limitValues,
    applied: limitValues,
    updatedAt: nullableText,
    updatedBy: nullableText,
  },
  required: ['deviceId', 'tier', 'override', 'tierLimits', 'applied', 'updatedAt', 'updatedBy'],
} as const

/**
 * Tiers' and devices' limits (docs/api.md, "Tiers and limits"): the broker's per-device limits and the
 * AI budgets, stored in the registry and applied to connected devices within a second. Writes need
 * `tiers:write`, reads `devices:read`. The body is validated against the composed schema the limits
 * service carries (LIMIT_VALUES_SCHEMA in config.ts), and by the service again (GH_LIMITS_INVALID).
 */
export async function tierRoutes(app: FastifyInstance, opts: TierRoutesOptions): Promise<void> {
  const { limits } = opts
  const body = limits.schema

  app.get(
    '/tiers',
    scoped('devices:read', 'tiers', 'Every tier with the limits stored for it (values left out come from the configuration)', {
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: tierView } }, required: ['items'] } },
    }),
    async () => ({ items: await limits.listTiers() }),
  )
  app.put<{ Params: { name: string }; Body: unknown }>(
    '/tiers/:name',
    scoped('tiers:write', 'tiers', "Replace a tier's limits; connected devices of the tier get them within a second", {
      params: tierParams,
      body,
      response: { 200: tierView },
    }),
    async (request) => limits.setTier(request.params.name, request.body, actorOf(request)),
  )
  app.get<{ Params: { id: string } }>(
    '/devices/:id/limits',
    scoped('devices:read', 'tiers', "A device's own limits, its tier's and what applies", {
      params: deviceParams,
      response: { 200: deviceLimitsView },
    }),
    async (request) => limits.getDevice(request.params.id),
  )
  app.put<{ Params: { id: string }; Body: unknown }>(
    '/devices/:id/limits',
    scoped('tiers:write', 'tiers', "Replace a device's own limits (over its tier's); applied within a second if it is connected", {
      params: deviceParams,
      body,
      response: { 200: deviceLimitsView },
    }),
    async (request) => limits.setDevice(request.params.id, request.body, actorOf(request)),
  )
  app.delete<{ Params: { id: string } }>(
    '/devices/:id/limits',
    scoped('tiers:write', 'tiers', "Remove a device's own limits: its tier's apply again", {
      params: deviceParams,
      response: { 200: deviceLimitsView },
    }),
    async (request) => limits.clearDevice(request.params.id, actorOf(request)),
  )
}
