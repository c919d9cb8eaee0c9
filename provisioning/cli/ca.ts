import { Option, type Command } from 'commander'
import { KEY_ALGORITHMS } from '../../certs/index.ts'
import type { CaCertificateInfo } from '../ca/index.ts'
import { addCommonOptions, addJsonOption, printJson, type CliDeps, type CommonOptions } from './cli-deps.ts'

interface RotateOptions extends CommonOptions {
  keyAlgorithm?: string
}

/** `gatehouse ca rotate|show`: the issuing CA's rotation and what the CA holds now. */
export function registerCa(program: Command, deps: CliDeps): void {
  const ca = program.command('ca').description('the certificate authority: show it, rotate the issuing CA')

  const rotate = ca
    .command('rotate')
    .description(
      'make a new issuing CA (signed by the root: needs GATEHOUSE_CA_PASSPHRASE when the keys are encrypted) and reissue the broker certificate from it; ' +
        'certificates of the previous one keep working until they expire or are renewed',
    )
    .addOption(
      new Option(
        '--key-algorithm <alg>',
        'key type of the new issuing CA and server key (default: that of the current issuing CA)',
      ).choices([...KEY_ALGORITHMS]),
    )
  addJsonOption(addCommonOptions(rotate)).action(async (options: RotateOptions) => {
    if (!options.json) deps.io.err('rotating the issuing CA: new key, certificate signed by the root, new broker certificate ...\n')
    const r = await deps.ca.rotate(options)
    if (options.json) return printJson(deps.io, r)
    deps.io.out(
      'rotated the issuing CA\n' +
        `  new issuing CA      serial ${r.issuing.serial}, valid until ${r.issuing.notAfter}\n` +
        `                      fingerprint ${r.issuing.fingerprint}\n` +
        `  previous issuing CA serial ${r.previous.serial}, kept in ${r.paths.previous}: its certificates keep working until they expire or are renewed\n` +
        `  trust bundle        ${r.paths.chain} (new + previous issuing CAs + root)\n` +
        `  broker certificate  reissued: ${r.paths.serverCert} (serial ${r.serverCertificate.serial})\n` +
        'a running `gatehouse start` switches to it within a change-feed interval, without dropping connections\n',
    )
  })

  const show = ca.command('show').description('the root, the current issuing CA and the previous issuing CAs, with their validity')
  addJsonOption(addCommonOptions(show)).action(async (options: CommonOptions) => {
    const overview = await deps.ca.show(options)
    if (options.json) return printJson(deps.io, overview)
    const line = (label: string, c: CaCertificateInfo) =>
      `${label.padEnd(14)}${c.subject}\n${''.padEnd(14)}serial ${c.serial}, ${c.notBefore} to ${c.notAfter} (${c.status})\n${''.padEnd(14)}fingerprint ${c.fingerprint}\n`
    deps.io.out(
      line('root CA', overview.root) +
        line('issuing CA', overview.issuing) +
        overview.previous.map((p) => line('previous', p)).join('') +
        `${'trust bundle'.padEnd(14)}${overview.paths.chain}\n`,
    )
  })
}
