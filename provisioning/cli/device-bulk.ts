import { Option, type Command } from 'commander'
import { CRL_REASONS, type CrlReason } from '../../certs/index.ts'
import type { BulkAction, DeviceSelector } from '../authority/device-changes.ts'
import { parseLabelPairs } from '../authority/labels.ts'
import type { DeviceStatus } from '../store/registry-store.ts'
import {
  addCommonOptions,
  addJsonOption,
  positiveInt,
  printJson,
  repeatable,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'
import { createProgress } from './progress.ts'

interface Options extends CommonOptions {
  group?: string
  label: string[]
  status?: DeviceStatus
  tier?: string
  max: number
  dryRun?: boolean
  reason?: CrlReason
  toGroup?: string
  toTier?: string
}

const VERBS = {
  disable: 'disable every active device the selector matches',
  enable: 'enable every disabled device the selector matches',
  revoke: 'revoke every device the selector matches, permanently; a running broker disconnects them within a second',
  move: 'move every device the selector matches to --to-group and/or --to-tier',
} as const

function selectorOf(options: Options): DeviceSelector {
  return {
    ...(options.group !== undefined && { group: options.group }),
    ...(options.label.length > 0 && { labels: parseLabelPairs(options.label) }),
    ...(options.status !== undefined && { status: options.status }),
    ...(options.tier !== undefined && { tier: options.tier }),
  }
}

function actionOf(verb: keyof typeof VERBS, options: Options): BulkAction {
  if (verb === 'revoke') return { kind: verb, reason: options.reason ?? 'unspecified' }
  if (verb !== 'move') return { kind: verb }
  return {
    kind: verb,
    ...(options.toGroup !== undefined && { group: options.toGroup }),
    ...(options.toTier !== undefined && { tier: options.toTier }),
  }
}

/** `device bulk disable|enable|revoke|move`: one action over the devices a selector matches (the API's POST /v1/bulk/devices/*). */
export function registerDeviceBulk(device: Command, deps: CliDeps): void {
  const bulk = device
    .command('bulk')
    .description('disable, enable, revoke or move every device a selector matches (--group, --label, --status, --tier), at most --max')
  for (const verb of Object.keys(VERBS) as (keyof typeof VERBS)[]) {
    const cmd = bulk
      .command(verb)
      .description(VERBS[verb])
      .option('--group <group>', 'select devices of this group')
      .option('--label <key=value>', 'select devices with this label (repeat: all must hold)', repeatable, [])
      .addOption(new Option('--status <status>', 'select devices with this status').choices(['active', 'disabled', 'revoked']))
      .option('--tier <tier>', 'select devices of this tier')
      .requiredOption('--max <n>', 'the most devices this may change; if more would, nothing changes (exit 1)', positiveInt('--max'))
      .option('--dry-run', 'list the devices it would change, change nothing')
    if (verb === 'revoke')
      cmd.addOption(new Option('--reason <reason>', 'RFC 5280 reason').choices([...CRL_REASONS]).default('unspecified'))
    if (verb === 'move') cmd.option('--to-group <group>', 'move them to this group').option('--to-tier <tier>', 'move them to this tier')
    addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
      const selector = selectorOf(options)
      const action = actionOf(verb, options)
      await withAuthority(deps, options, async (authority) => {
        const progress = options.dryRun || options.json ? undefined : createProgress(deps.io, `${verb}`)
        const result = await authority.bulk(
          { selector, action, max: options.max, dryRun: options.dryRun === true },
          deps.actor,
          (done, total) => progress?.update(done, total),
        )
        progress?.stop()
        const count = result.deviceIds.length
        if (options.json) return printJson(deps.io, { ...result, count })
        const what = result.dryRun ? `would ${verb}` : `${verb === 'move' ? 'moved' : `${verb}d`}`
        deps.io.out(`${what} ${count} device${count === 1 ? '' : 's'}${count > 0 ? `: ${result.deviceIds.join(', ')}` : ''}\n`)
      })
    })
  }
}
