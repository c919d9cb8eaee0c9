import { Option, type Command } from 'commander'
import { CRL_REASONS, type CrlReason } from '../../certs/index.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'

export function registerDeviceRevoke(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('revoke <id>')
    .description('revoke a device and all its certificates, permanently; a running broker disconnects it within a second')
    .addOption(new Option('--reason <reason>', 'RFC 5280 reason').choices([...CRL_REASONS]).default('unspecified'))
  addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: CommonOptions & { reason: CrlReason }) => {
    await withAuthority(deps, options, async (authority) => {
      const { revokedSerials } = await authority.revokeDevice(id, options.reason, deps.actor)
      if (options.json) return printJson(deps.io, { deviceId: id, status: 'revoked', reason: options.reason, revokedSerials })
      deps.io.out(`revoked device ${id} (${options.reason}); certificates revoked: ${revokedSerials.join(', ') || 'none'}\n`)
    })
  })
}
