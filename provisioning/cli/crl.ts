import type { Command } from 'commander'
import { writeFileAtomic } from '../data-dir/atomic-file.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'

interface Options extends CommonOptions {
  out?: string
  der?: boolean
}

export function registerCrl(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('crl')
    .description('print or write the current CRL, signed by the issuing CA (reissued if stale)')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--der', 'DER instead of PEM (needs --out)')
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    await withAuthority(deps, options, async (authority) => {
      const crl = await authority.currentCrl()
      const meta = { crlNumber: crl.crlNumber, thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString(), entries: crl.entries }
      if (options.out) {
        writeFileAtomic(options.out, options.der ? crl.der : crl.pem, 0o644)
        if (options.json) return printJson(deps.io, { ...meta, path: options.out })
        return deps.io.out(`wrote CRL #${crl.crlNumber} (${crl.entries} revoked, next update ${meta.nextUpdate}) to ${options.out}\n`)
      }
      if (options.der) throw Object.assign(new Error('--der writes binary: give --out FILE too'), { code: 'commander.invalidArgument' })
      if (options.json) return printJson(deps.io, { ...meta, pem: crl.pem })
      deps.io.out(crl.pem)
    })
  })
}
