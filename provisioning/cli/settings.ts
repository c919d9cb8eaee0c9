import type { Command } from 'commander'
import { unsafeInteger } from '../../certs/index.ts'
import { JsonIntegerUnsafe, SettingsInvalid } from '../errors.ts'
import { keyProblem } from '../settings/json-document.ts'
import type { SettingsTarget } from '../settings/settings-service.ts'
import {
  addCommonOptions,
  addJsonOption,
  positiveInt,
  printJson,
  readInputFile,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'

interface TargetOptions extends CommonOptions {
  device?: string
  group?: string
  defaults?: boolean
  ifMatch?: number
  fromFile?: string
}

function targetOf(o: TargetOptions): SettingsTarget {
  const given = [o.device !== undefined, o.group !== undefined, Boolean(o.defaults)].filter(Boolean).length
  if (given !== 1)
    throw Object.assign(new Error('name exactly one of --device ID, --group G or --defaults'), { code: 'commander.invalidArgument' })
  if (o.device !== undefined) return { kind: 'device', deviceId: o.device }
  if (o.group !== undefined) return { kind: 'group', group: o.group }
  return { kind: 'fleet' }
}

/** KEY=VALUE with a dotted key (a.b=1 -> {"a":{"b":1}}); VALUE is JSON when it parses, else a string. */
export function assignmentsToPatch(pairs: string[], unset = false): Record<string, unknown> {
  const patch: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (!unset && eq < 1) throw Object.assign(new Error(`'${pair}' is not KEY=VALUE`), { code: 'commander.invalidArgument' })
    const path = (unset ? pair : pair.slice(0, eq)).split('.')
    if (path.some((p) => p === '')) throw Object.assign(new Error(`'${pair}' has an empty key`), { code: 'commander.invalidArgument' })
    for (const key of path) {
      const problem = keyProblem(key)
      if (problem) throw new SettingsInvalid(`'${pair.slice(0, 120)}'`, problem)
    }
    let value: unknown = null
    if (!unset) {
      const raw = pair.slice(eq + 1)
      try {
        value = JSON.parse(raw)
      } catch {
        value = raw
      }
      const unsafe = typeof value === 'string' ? undefined : unsafeInteger(raw)
      if (unsafe) throw new JsonIntegerUnsafe(unsafe.literal, `'${pair.slice(0, eq)}'`, String(unsafe.parsed))
    }
    let node = patch
    for (const key of path.slice(0, -1)) {
      const next = node[key]
      const child = (typeof next === 'object' && next !== null ? next : {}) as Record<string, unknown>
      node[key] = child
      node = child
    }
    node[path[path.length - 1] as string] = value
  }
  return patch
}

function withTarget(cmd: Command): Command {
  return addJsonOption(addCommonOptions(cmd))
    .option('--device <id>', "a device's own overrides")
    .option('--group <group>', "a group's settings")
    .option('--defaults', 'the fleet defaults')
}

export function registerSettings(program: Command, deps: CliDeps): void {
  const settings = program
    .command('settings')
    .description('device settings: fleet defaults < group < device overrides, pushed to devices/{id}/settings')

  withTarget(
    settings.command('get').description('show effective settings of a device (desired, reported, delta), or a group / the defaults'),
  ).action(async (o: TargetOptions) => {
    const target = targetOf(o)
    await withAuthority(deps, o, async (_a, { settings: svc }) => {
      const view =
        target.kind === 'device'
          ? { ...(await svc.getDevice(target.deviceId)), overrides: (await svc.getDeviceLayer(target.deviceId)).document }
          : await svc.getLayer(target)
      if (o.json) return printJson(deps.io, view)
      deps.io.out(`${JSON.stringify(view, null, 2)}\n`)
    })
  })

  for (const verb of ['set', 'unset'] as const) {
    withTarget(
      settings
        .command(`${verb} [${verb === 'set' ? 'KEY=VALUE' : 'KEY'}...]`)
        .description(
          verb === 'set'
            ? 'change settings (dotted keys nest; values are JSON or strings; keys ending in _secret/Secret are secret). --from-file takes a JSON merge patch (- for stdin), which keeps secrets out of shell history'
            : 'remove settings keys from the named layer',
        ),
    )
      .option(
        '--if-match <version>',
        'only if the current version (device) or revision (group, defaults) is this',
        positiveInt('--if-match'),
      )
      .option('--from-file <file>', verb === 'set' ? 'a JSON merge patch (RFC 7396) to apply' : 'not used', undefined)
      .action(async (pairs: string[], o: TargetOptions) => {
        const target = targetOf(o)
        let patch: Record<string, unknown>
        if (verb === 'set' && o.fromFile !== undefined) {
          const text = o.fromFile === '-' ? await readStdin() : Buffer.from(readInputFile(o.fromFile)).toString('utf8')
          patch = parseDocument(text, '--from-file') as Record<string, unknown>
        } else {
          if (pairs.length === 0)
            throw Object.assign(new Error(`give at least one ${verb === 'set' ? 'KEY=VALUE' : 'KEY'}`), {
              code: 'commander.invalidArgument',
            })
          patch = assignmentsToPatch(pairs, verb === 'unset')
        }
        await withAuthority(deps, o, async (_a, { settings: svc }) => {
          const opts = { actor: deps.actor, ...(o.ifMatch !== undefined && { ifMatch: o.ifMatch }) }
          if (target.kind === 'device') {
            const view = await svc.patchDevice(target.deviceId, patch, opts)
            if (o.json) return printJson(deps.io, view)
            return deps.io.out(`settings of ${view.deviceId} are now version ${view.version}\n`)
          }
          const layer = await svc.patchLayer(target, patch, opts)
          if (o.json) return printJson(deps.io, layer)
          deps.io.out(`${layer.scope} settings are now revision ${layer.revision}; ${layer.devicesChanged} device(s) get a new version\n`)
        })
      })
  }

  const schema = settings
    .command('schema')
    .description("a group's JSON Schema: settings that break it are refused before any device sees them")
  addJsonOption(addCommonOptions(schema.command('set <file>').requiredOption('--group <group>', 'the group'))).action(
    async (file: string, o: TargetOptions & { group: string }) => {
      const text = Buffer.from(readInputFile(file)).toString('utf8')
      const parsed = parseDocument(text, file)
      await withAuthority(deps, o, async (_a, { settings: svc }) => {
        await svc.setSchema(o.group, parsed, deps.actor)
        if (o.json) printJson(deps.io, { group: o.group, schema: await svc.getSchema(o.group) })
        else deps.io.out(`schema set for group ${o.group}\n`)
      })
    },
  )
  // the schema is JSON either way; --json is accepted like on every command
  addJsonOption(addCommonOptions(schema.command('get').requiredOption('--group <group>', 'the group'))).action(
    async (o: TargetOptions & { group: string }) => {
      await withAuthority(deps, o, async (_a, { settings: svc }) => printJson(deps.io, await svc.getSchema(o.group)))
    },
  )
}

/** JSON from an operator's file, refused when not JSON or when it holds an integer JSON.parse would round. */
function parseDocument(text: string, where: string): unknown {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new SettingsInvalid(where, `not JSON: ${(err as Error).message}`)
  }
  const unsafe = unsafeInteger(text)
  if (unsafe) throw new JsonIntegerUnsafe(unsafe.literal, `${where} ${unsafe.path}`, String(unsafe.parsed))
  return parsed
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
