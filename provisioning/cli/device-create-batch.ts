import type { Command } from 'commander'
import type { PreparedBatch } from '../authority/batch.ts'
import { stageBundles } from '../bundles/write-bundle.ts'
import {
  addCommonOptions,
  addJsonOption,
  p12Password,
  positiveInt,
  printJson,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'
import { createProgress } from './progress.ts'

interface Options extends CommonOptions {
  count: number
  prefix: string
  start?: number
  group?: string
  tier?: string
  out: string
  validDays?: number
  p12?: boolean
}

export function registerDeviceCreateBatch(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('create-batch')
    .description('register N devices <prefix>0001..<prefix>N in one transaction, writing a bundle for each')
    .requiredOption('--count <n>', 'how many devices', positiveInt('--count'))
    .requiredOption('--prefix <prefix>', 'id prefix, e.g. sensor-')
    .option('--start <n>', 'first number (default 1)', positiveInt('--start'))
    .option('--group <group>', 'group for every device of the batch')
    .option('--tier <tier>', 'tier for every device of the batch')
    .option('--out <dir>', 'where to write the bundles', './devices')
    .option('--valid-days <n>', 'certificate validity in days', positiveInt('--valid-days'))
    .option('--p12', 'write <id>.p12 files (one password for the batch: GATEHOUSE_P12_PASSWORD, else generated and printed)')
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    const pw = options.p12 ? p12Password(deps) : undefined
    await withAuthority(deps, options, async (authority) => {
      const started = performance.now()
      // each bundle is written (and fsynced) as its device is issued; the registry commits once all are durable
      const staged = stageBundles(options.out, { format: options.p12 ? 'p12' : 'pem', ...(pw && { p12Password: pw.password }) })
      const issuing = createProgress(deps.io, 'issuing')
      let prepared: PreparedBatch
      try {
        prepared = await authority.prepareBatch(
          {
            count: options.count,
            prefix: options.prefix,
            ...(options.start !== undefined && { start: options.start }),
            group: options.group ?? null,
            ...(options.tier && { tier: options.tier }),
            ...(options.validDays && { validDays: options.validDays }),
          },
          deps.actor,
          (done, total) => issuing.update(done, total),
          staged.write,
        )
      } catch (err) {
        staged.abort()
        throw err
      } finally {
        issuing.stop()
      }
      await staged.commit(prepared.commit)
      const seconds = (performance.now() - started) / 1000
      const ids = prepared.issued.map((i) => i.deviceId)
      const summary = {
        count: ids.length,
        first: ids[0],
        last: ids[ids.length - 1],
        out: options.out,
        seconds: Number(seconds.toFixed(2)),
        ...(pw?.generated && { p12Password: pw.password }),
      }
      if (options.json) return printJson(deps.io, summary)
      deps.io.out(
        `created ${summary.count} devices ${summary.first} .. ${summary.last} in ${summary.seconds}s; bundles in ${summary.out}\n` +
          (pw?.generated ? `p12 password for the batch: ${pw.password}   (shown once: store it now)\n` : ''),
      )
    })
  })
}
