import type { Command } from 'commander'
import { writeBundlesThenCommit } from '../bundles/write-bundle.ts'
import {
  addCommonOptions,
  addJsonOption,
  p12Password,
  positiveInt,
  printJson,
  readInputFile,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'
import { describeIssued } from './device-create.ts'

interface Options extends CommonOptions {
  out: string
  csr?: string
  validDays?: number
  p12?: boolean
}

export function registerDeviceRenew(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('renew <id>')
    .description('issue a new certificate for a device; the previous one keeps working for the renewal overlap')
    .option('--out <dir>', 'where to write the new bundle (<dir>/<id>/ must not exist yet)', './devices/renewed')
    .option('--csr <file>', 'sign this CSR instead of generating a key')
    .option('--valid-days <n>', 'certificate validity in days', positiveInt('--valid-days'))
    .option('--p12', 'write <id>.p12')
  addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: Options) => {
    const csr = options.csr === undefined ? undefined : readInputFile(options.csr)
    const pw = options.p12 ? p12Password(deps) : undefined
    await withAuthority(deps, options, async (authority) => {
      const { issued, commit } = await authority.prepareRenewal(
        id,
        { ...(csr && { csr }), ...(options.validDays && { validDays: options.validDays }) },
        deps.actor,
      )
      const [path] = await writeBundlesThenCommit(
        options.out,
        [issued],
        { format: options.p12 ? 'p12' : 'pem', ...(pw && { p12Password: pw.password }) },
        commit,
      )
      const summary = { ...describeIssued(issued), path, ...(pw?.generated && { p12Password: pw.password }) }
      if (options.json) return printJson(deps.io, summary)
      deps.io.out(
        `renewed device ${id}\n  serial       ${summary.serial}\n  valid until  ${summary.notAfter}\n  files        ${path}\n` +
          (pw?.generated ? `  p12 password ${pw.password}   (shown once: store it now)\n` : ''),
      )
    })
  })
}
