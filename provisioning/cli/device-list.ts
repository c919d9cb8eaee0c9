import { Option, type Command } from 'commander'
import { parseLabelPairs } from '../authority/labels.ts'
import type { DeviceRecord, Labels } from '../store/registry-store.ts'
import { labelledDeviceView } from '../views.ts'
import {
  addCommonOptions,
  addJsonOption,
  dateOption,
  positiveInt,
  printJson,
  repeatable,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'

interface Options extends CommonOptions {
  group?: string
  status?: DeviceRecord['status']
  tier?: string
  label: string[]
  expiresBefore?: Date
  after?: string
  limit?: number
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`
}

export const labelText = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || '-'

export function registerDeviceList(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('list')
    .description('list registered devices, by id; every filter given must hold')
    .option('--group <group>', 'only this group')
    .addOption(new Option('--status <status>', 'only this status').choices(['active', 'disabled', 'revoked']))
    .option('--tier <tier>', 'only this tier')
    .option('--label <key=value>', 'only devices with this label (repeat: all must hold)', repeatable, [])
    .option('--expires-before <date>', 'only devices whose active certificate ends before this date', dateOption('--expires-before'))
    .option('--after <id>', 'start after this device id (the last id of the previous page)')
    .option('--limit <n>', 'at most n devices', positiveInt('--limit'))
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    const labels = options.label.length > 0 ? parseLabelPairs(options.label) : undefined
    await withAuthority(deps, options, async (authority) => {
      const devices = await authority.listDevices({
        ...(options.group !== undefined && { group: options.group }),
        ...(options.status !== undefined && { status: options.status }),
        ...(options.tier !== undefined && { tier: options.tier }),
        ...(labels && { labels }),
        ...(options.expiresBefore && { certificateExpiresBefore: options.expiresBefore }),
        ...(options.after !== undefined && { after: options.after }),
        ...(options.limit !== undefined && { limit: options.limit }),
      })
      const labelled: [DeviceRecord, Labels][] = []
      for (const d of devices) labelled.push([d, await authority.labels(d.id)])
      if (options.json)
        return printJson(
          deps.io,
          labelled.map(([d, labels]) => labelledDeviceView(d, labels)),
        )
      if (devices.length === 0) return deps.io.out('no devices\n')
      deps.io.out(
        table([
          ['ID', 'GROUP', 'TIER', 'STATUS', 'CREATED', 'LABELS'],
          ...labelled.map(([d, labels]) => [d.id, d.group ?? '-', d.tier, d.status, d.createdAt.toISOString(), labelText(labels)]),
        ]),
      )
    })
  })
}
