import type { Command } from 'commander'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { deviceView } from '../views.ts'

/** disable (reversible; a running broker disconnects the device within a second) and enable. */
export function registerDeviceStatus(device: Command, deps: CliDeps): void {
  for (const verb of ['disable', 'enable'] as const) {
    const cmd = device
      .command(`${verb} <id>`)
      .description(verb === 'disable' ? 'stop a device from connecting until it is enabled again' : 'let a disabled device connect again')
    addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: CommonOptions) => {
      await withAuthority(deps, options, async (authority) => {
        const d = await (verb === 'disable' ? authority.disableDevice(id, deps.actor) : authority.enableDevice(id, deps.actor))
        if (options.json) return printJson(deps.io, deviceView(d))
        deps.io.out(`${verb}d device ${id}\n`)
      })
    })
  }
}
