import { extname } from 'node:path'
import type { Command } from 'commander'
import type { CrlSnapshot } from '../ca/index.ts'
import { writeFileAtomic } from '../data-dir/atomic-file.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'

interface Options extends CommonOptions {
  out?: string
  der?: boolean
}

/**
 * One CRL per issuing CA: the current one's first, then (after `ca rotate`) one per previous issuing CA
 * that has not expired. PEM output holds them all, one after the other (what relying parties such as
 * openssl, nginx or mosquitto load from one CRL file); DER holds one CRL per file, so a previous CA's
 * goes to FILE with ".<its serial>" before the extension. With one issuing CA the output is as it was.
 */
export function registerCrl(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('crl')
    .description('print or write the current CRLs, one signed by each issuing CA (reissued if stale)')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--der', "DER instead of PEM (needs --out; a previous issuing CA's CRL goes to FILE.<serial>)")
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    if (options.der && !options.out)
      throw Object.assign(new Error('--der writes binary: give --out FILE too'), { code: 'commander.invalidArgument' })
    await withAuthority(deps, options, async (authority) => {
      const [crl, ...previous] = await authority.currentCrls()
      if (!crl) throw new Error('no issuing CA')
      const meta = (c: CrlSnapshot) => ({
        crlNumber: c.crlNumber,
        thisUpdate: c.thisUpdate.toISOString(),
        nextUpdate: c.nextUpdate.toISOString(),
        entries: c.entries,
        issuerSerial: c.issuerSerial,
      })
      if (options.out) {
        const out = options.out
        const written: { crl: CrlSnapshot; path: string }[] = []
        if (options.der) {
          const ext = extname(out)
          const base = ext ? out.slice(0, -ext.length) : out
          written.push({ crl, path: out }, ...previous.map((p) => ({ crl: p, path: `${base}.${p.issuerSerial}${ext}` })))
          for (const w of written) writeFileAtomic(w.path, w.crl.der, 0o644)
        } else {
          writeFileAtomic(out, [crl, ...previous].map((c) => c.pem).join(''), 0o644)
          written.push({ crl, path: out }, ...previous.map((p) => ({ crl: p, path: out })))
        }
        if (options.json)
          return printJson(deps.io, { ...meta(crl), path: out, previous: written.slice(1).map((w) => ({ ...meta(w.crl), path: w.path })) })
        for (const w of written) {
          const by = w === written[0] ? '' : ` of previous issuing CA ${w.crl.issuerSerial}`
          deps.io.out(
            `wrote CRL #${w.crl.crlNumber}${by} (${w.crl.entries} revoked, next update ${w.crl.nextUpdate.toISOString()}) to ${w.path}\n`,
          )
        }
        return
      }
      if (options.json)
        return printJson(deps.io, { ...meta(crl), pem: crl.pem, previous: previous.map((p) => ({ ...meta(p), pem: p.pem })) })
      deps.io.out([crl, ...previous].map((c) => c.pem).join(''))
    })
  })
}
