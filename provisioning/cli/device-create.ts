import type { Command } from 'commander'
import { writeBundlesThenCommit } from '../bundles/write-bundle.ts'
import type { IssuedDevice } from '../authority/device-authority.ts'
import { parseLabelPairs } from '../authority/labels.ts'
import {
  addCommonOptions,
  addJsonOption,
  p12Password,
  positiveInt,
  printJson,
  readInputFile,
  repeatable,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'

interface Options extends CommonOptions {
  group?: string
  tier?: string
  out: string
  csr?: string
  validDays?: number
  p12?: boolean
  label: string[]
}

export function describeIssued(issued: Pick<IssuedDevice, 'deviceId' | 'serial' | 'fingerprint' | 'notBefore' | 'notAfter'>) {
  return {
    deviceId: issued.deviceId,
    serial: issued.serial,
    fingerprint: issued.fingerprint,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
  }
}

export function registerDeviceCreate(device: Command, deps: CliDeps): void {
  const cmd = device
    .command('create <id>')
    .description('register a device and issue its certificate (a new key, or signed from --csr)')
    .option('--group <group>', 'device group (settings and AI configuration per group)')
    .option('--tier <tier>', 'service tier (default from config: standard)')
    .option('--label <key=value>', 'a label (repeat for several)', repeatable, [])
    .option('--out <dir>', 'where to write <id>/cert.pem, key.pem, ca.pem (or <id>.p12)', './devices')
    .option('--csr <file>', 'sign this CSR (PEM or DER) instead of generating a key; its CN must be <id>')
    .option('--valid-days <n>', 'certificate validity in days', positiveInt('--valid-days'))
    .option('--p12', 'write a PKCS#12 file <id>.p12 (password from GATEHOUSE_P12_PASSWORD, else generated and printed)')
  addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: Options) => {
    const csr = options.csr === undefined ? undefined : readInputFile(options.csr)
    const pw = options.p12 ? p12Password(deps) : undefined
    const labels = options.label.length > 0 ? parseLabelPairs(options.label) : undefined
    await withAuthority(deps, options, async (authority) => {
      const prepared = await authority.prepareDevice(
        {
          id,
          group: options.group ?? null,
          ...(options.tier && { tier: options.tier }),
          ...(csr && { csr }),
          ...(labels && { labels }),
          ...(options.validDays && { validDays: options.validDays }),
        },
        deps.actor,
      )
      const [path] = await writeBundlesThenCommit(
        options.out,
        [prepared.issued],
        { format: options.p12 ? 'p12' : 'pem', ...(pw && { p12Password: pw.password }) },
        prepared.commit,
      )
      const summary = {
        ...describeIssued(prepared.issued),
        group: prepared.issued.device.group,
        tier: prepared.issued.device.tier,
        ...(labels && { labels }),
        path,
        ...(pw?.generated && { p12Password: pw.password }),
      }
      if (options.json) return printJson(deps.io, summary)
      const files = options.p12 ? String(path) : `${path}/cert.pem${csr ? '' : `, ${path}/key.pem (0600)`}, ${path}/ca.pem`
      deps.io.out(
        `created device ${summary.deviceId} (group ${summary.group ?? '-'}, tier ${summary.tier})\n` +
          `  serial       ${summary.serial}\n  fingerprint  ${summary.fingerprint}\n  valid until  ${summary.notAfter}\n  files        ${files}\n` +
          (pw?.generated ? `  p12 password ${pw.password}   (shown once: store it now)\n` : ''),
      )
    })
  })
}
