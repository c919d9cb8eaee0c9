import type { Command } from 'commander'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { certificateView, deviceView } from '../views.ts'
import { table } from './device-list.ts'

export function registerDeviceShow(device: Command, deps: CliDeps): void {
  const cmd = device.command('show <id>').description('show a device and every certificate it has held')
  addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: CommonOptions) => {
    await withAuthority(deps, options, async (authority) => {
      const { device: d, certificates } = await authority.getDevice(id)
      if (options.json) return printJson(deps.io, { ...deviceView(d), certificates: certificates.map(certificateView) })
      deps.io.out(
        `device   ${d.id}\ngroup    ${d.group ?? '-'}\ntier     ${d.tier}\nstatus   ${d.status}\ncreated  ${d.createdAt.toISOString()}\n\n`,
      )
      deps.io.out(
        table([
          ['SERIAL', 'STATUS', 'NOT AFTER', 'FINGERPRINT'],
          ...certificates.map((c) => [
            c.serial,
            c.status + (c.revocationReason ? ` (${c.revocationReason})` : ''),
            c.notAfter.toISOString(),
            c.fingerprint,
          ]),
        ]),
      )
    })
  })
}
