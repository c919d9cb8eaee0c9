import type { Command } from 'commander'
import type { DeviceUpdate } from '../authority/device-changes.ts'
import { parseLabelPairs } from '../authority/labels.ts'
import { labelledDeviceView } from '../views.ts'
import { addCommonOptions, addJsonOption, printJson, repeatable, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { labelText } from './device-list.ts'

interface Options extends CommonOptions {
  group?: string | false
  tier?: string
  label: string[]
  removeLabel: string[]
}

function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'commander.invalidArgument' })
}

/** The change the flags ask for; at least one flag is required. */
function updateOf(options: Options): DeviceUpdate {
  const labels: Record<string, string | null> = options.label.length > 0 ? { ...parseLabelPairs(options.label) } : {}
  for (const key of options.removeLabel) labels[key] = null
  const update: DeviceUpdate = {
    ...(options.group !== undefined && { group: options.group === false ? null : options.group }),
    ...(options.tier !== undefined && { tier: options.tier }),
    ...(Object.keys(labels).length > 0 && { labels }),
  }
  if (Object.keys(update).length === 0) throw usage('nothing to change: give --group, --no-group, --tier, --label or --remove-label')
  return update
}

/** `device update`: a device's group, tier and labels (the API's PATCH /v1/devices/{id}). */
export function registerDeviceUpdate(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('update <id>')
    .description(
      "change a device's group, tier or labels (audited as device.updated; a running broker applies it to the device's live session within a second)",
    )
    .option('--group <group>', 'move it to this group')
    .option('--no-group', 'take it out of its group')
    .option('--tier <tier>', 'set its tier')
    .option('--label <key=value>', 'set a label (repeat for several)', repeatable, [])
    .option('--remove-label <key>', 'remove a label (repeat for several)', repeatable, [])
  addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: Options) => {
    const update = updateOf(options)
    await withAuthority(deps, options, async (authority) => {
      const d = await authority.updateDevice(id, update, deps.actor)
      const labels = await authority.labels(id)
      if (options.json) return printJson(deps.io, labelledDeviceView(d, labels))
      deps.io.out(`updated device ${id} (group ${d.group ?? '-'}, tier ${d.tier}, labels ${labelText(labels)})\n`)
    })
  })
}
