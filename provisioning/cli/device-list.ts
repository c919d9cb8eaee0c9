import { Option, type Command } from 'commander'
import type { DeviceRecord } from '../store/registry-store.ts'
import { deviceView } from '../views.ts'
import { addCommonOptions, addJsonOption, positiveInt, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'

interface Options extends CommonOptions {
  group?: string
  status?: DeviceRecord['status']
  limit?: number
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`
}

export function registerDeviceList(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('list')
    .description('list registered devices')
    .option('--group <group>', 'only this group')
    .addOption(new Option('--status <status>', 'only this status').choices(['active', 'disabled', 'revoked']))
    .option('--limit <n>', 'at most n devices', positiveInt('--limit'))
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    await withAuthority(deps, options, async (authority) => {
      const devices = authority.listDevices({
        ...(options.group !== undefined && { group: options.group }),
        ...(options.status !== undefined && { status: options.status }),
        ...(options.limit !== undefined && { limit: options.limit }),
      })
      if (options.json) return printJson(deps.io, devices.map(deviceView))
      if (devices.length === 0) return deps.io.out('no devices\n')
      deps.io.out(
        table([
          ['ID', 'GROUP', 'TIER', 'STATUS', 'CREATED'],
          ...devices.map((d) => [d.id, d.group ?? '-', d.tier, d.status, d.createdAt.toISOString()]),
        ]),
      )
    })
  })
}
