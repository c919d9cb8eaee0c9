import type { FastifyInstance, FastifyReply } from 'fastify'
import type { DeviceSettingsView, LayerView, SettingsService, SettingsTarget } from '../settings/settings-service.ts'
import { actorOf, etag, parseIfMatch, scoped } from './route-helpers.ts'
import { deviceParams, groupParams, ifMatchHeaders } from './schemas.ts'
import { addJsonBodyParser } from './json-body.ts'

export interface SettingsRoutesOptions {
  settings: SettingsService
}

export const MERGE_PATCH = 'application/merge-patch+json'
type LayerTarget = Exclude<SettingsTarget, { kind: 'device' }>

const mergePatchBody = {
  type: 'object',
  description: 'an RFC 7396 JSON merge patch: objects merge, null deletes a key, anything else replaces it',
  additionalProperties: true,
} as const
const patchSchema = { body: mergePatchBody, headers: ifMatchHeaders, consumes: [MERGE_PATCH, 'application/json'] }

function withDeviceTag(reply: FastifyReply, view: DeviceSettingsView): DeviceSettingsView {
  reply.header('etag', etag(view.version))
  return view
}

function withLayerTag<V extends LayerView>(reply: FastifyReply, view: V): V {
  reply.header('etag', etag(view.revision))
  return view
}

/**
 * Settings for apps: a device's effective settings (ETag = its version), the fleet defaults and group
 * layers (ETag = the layer revision), and group JSON Schemas. Changes are RFC 7396 merge patches; the
 * settings service checks If-Match inside its transaction, so of two writers with the same ETag exactly
 * one wins and the other gets 412. Secret values are redacted by the service in every view.
 */
export async function settingsRoutes(app: FastifyInstance, opts: SettingsRoutesOptions): Promise<void> {
  const { settings } = opts
  const layerTarget = (group?: string): LayerTarget => (group === undefined ? { kind: 'fleet' } : { kind: 'group', group })
  const view = (summary: string, extra: Record<string, unknown>, ref: string) =>
    scoped('settings:read', 'settings', summary, { ...extra, response: { 200: { $ref: ref } } })
  const change = (summary: string, extra: Record<string, unknown>, ref: string) =>
    scoped('settings:write', 'settings', summary, { ...extra, ...patchSchema, response: { 200: { $ref: ref } } })

  app.get<{ Params: { id: string } }>(
    '/devices/:id/settings',
    view("A device's effective settings and its last report", { params: deviceParams }, 'DeviceSettingsView#'),
    async (request, reply) => withDeviceTag(reply, await settings.getDevice(request.params.id)),
  )
  app.get<{ Params: { group: string } }>(
    '/groups/:group/settings',
    view("A group's settings layer", { params: groupParams }, 'LayerView#'),
    async (request, reply) => withLayerTag(reply, await settings.getLayer(layerTarget(request.params.group))),
  )
  app.get('/settings/defaults', view('The fleet defaults layer', {}, 'LayerView#'), async (_request, reply) =>
    withLayerTag(reply, await settings.getLayer(layerTarget())),
  )

  app.put<{ Params: { group: string }; Body: Record<string, unknown> }>(
    '/groups/:group/settings/schema',
    scoped('settings:write', 'settings', "Set a group's JSON Schema: every change to the group's devices' settings must satisfy it", {
      params: groupParams,
      body: { type: 'object', description: 'a JSON Schema (draft 7 / 2019-09 keywords, as ajv reads them)', additionalProperties: true },
      response: { 200: groupSchemaResponse },
    }),
    async (request) => {
      await settings.setSchema(request.params.group, request.body, actorOf(request))
      return { group: request.params.group, schema: await settings.getSchema(request.params.group) }
    },
  )
  app.get<{ Params: { group: string } }>(
    '/groups/:group/settings/schema',
    scoped('settings:read', 'settings', "A group's JSON Schema (null when it has none)", {
      params: groupParams,
      response: { 200: groupSchemaResponse },
    }),
    async (request) => ({ group: request.params.group, schema: await settings.getSchema(request.params.group) }),
  )

  // PATCH routes in their own context: only they accept application/merge-patch+json
  await app.register(async (patches) => {
    addJsonBodyParser(patches, MERGE_PATCH)

    patches.patch<{ Params: { id: string }; Body: unknown; Headers: { 'if-match'?: string } }>(
      '/devices/:id/settings',
      change(
        "Change a device's own settings (its override layer); If-Match is the device's settings version",
        { params: deviceParams },
        'DeviceSettingsView#',
      ),
      async (request, reply) => {
        const ifMatch = parseIfMatch(request.headers['if-match'])
        return withDeviceTag(
          reply,
          await settings.patchDevice(request.params.id, request.body, {
            actor: actorOf(request),
            ...(ifMatch !== undefined && { ifMatch }),
          }),
        )
      },
    )
    patches.patch<{ Params: { group: string }; Body: unknown; Headers: { 'if-match'?: string } }>(
      '/groups/:group/settings',
      change("Change a group's settings layer; If-Match is the layer's revision", { params: groupParams }, 'LayerView#'),
      async (request, reply) =>
        patchLayer(reply, layerTarget(request.params.group), request.body, request.headers['if-match'], actorOf(request)),
    )
    patches.patch<{ Body: unknown; Headers: { 'if-match'?: string } }>(
      '/settings/defaults',
      change("Change the fleet defaults; If-Match is the layer's revision", {}, 'LayerView#'),
      async (request, reply) => patchLayer(reply, layerTarget(), request.body, request.headers['if-match'], actorOf(request)),
    )
  })

  async function patchLayer(reply: FastifyReply, target: LayerTarget, body: unknown, ifMatchHeader: string | undefined, actor: string) {
    const ifMatch = parseIfMatch(ifMatchHeader)
    return withLayerTag(reply, await settings.patchLayer(target, body, { actor, ...(ifMatch !== undefined && { ifMatch }) }))
  }
}

const groupSchemaResponse = {
  type: 'object',
  properties: { group: { type: 'string' }, schema: { type: ['object', 'null'], additionalProperties: true } },
  required: ['group', 'schema'],
} as const
