import { Option, type Command } from 'commander'
import { KEY_ALGORITHMS } from '../../certs/index.ts'
import { addCommonOptions, addJsonOption, printJson, type CliDeps, type CommonOptions, type InitSummary } from './cli-deps.ts'

interface Options extends CommonOptions {
  hostname?: string[]
  keyAlgorithm?: string
  pkcs11Module?: string
  pkcs11Token?: string
  pkcs11PinFile?: string
}

export function registerInit(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('init')
    .description('create the data directory, the CA and the broker certificate; safe to run again (never replaces a CA)')
    .option('--hostname <name>', 'extra DNS name or IP for the broker certificate (repeatable)', (v: string, acc: string[] = []) => [
      ...acc,
      v,
    ])
    .addOption(new Option('--key-algorithm <alg>', 'key type for a new CA and server key').choices([...KEY_ALGORITHMS]))
    .option('--pkcs11-module <lib>', 'make the new CA keys in a PKCS#11 token: path of its library (with --pkcs11-token)')
    .option('--pkcs11-token <label>', 'label of the PKCS#11 token (the CA keys never leave it; the data directory names them)')
    .option('--pkcs11-pin-file <file>', 'file holding the token PIN (else GATEHOUSE_PKCS11_PIN[_FILE]; never a flag)')
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    const summary = await deps.init(options)
    if (options.json) return printJson(deps.io, summary)
    deps.io.out(
      `${summary.createdCa ? 'created a new CA' : 'CA already present (kept)'} in ${summary.dataDir}${keyNote(summary)}\n` +
        `  root fingerprint  ${summary.rootFingerprint}\n  trust chain       ${summary.caChain}\n` +
        (summary.serverCertIssued ? '  issued a new broker server certificate\n' : ''),
    )
  })
}

function keyNote(summary: InitSummary): string {
  if (summary.pkcs11Token !== undefined) return ` (CA keys in PKCS#11 token '${summary.pkcs11Token}')`
  return summary.encrypted ? ' (keys encrypted)' : ' (keys NOT encrypted: set GATEHOUSE_CA_PASSPHRASE to encrypt them)'
}
