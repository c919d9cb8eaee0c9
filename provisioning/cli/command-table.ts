import { Help, type Command } from 'commander'
import type { CliDeps } from './cli-deps.ts'

type Register = (parent: Command, deps: CliDeps) => void

/**
 * The command table (issue 14): each module of a command (or of a group of commands) with how its commands
 * show in their parent's --help, `[term, description]`, and how to load it. Parsing a call or printing a
 * parent's help needs only this; a command's module, with what its action imports, loads only when that
 * command is named. test/integration/cli/command-table.test.ts checks each entry against its module.
 */
export interface CommandModule {
  parent: 'program' | 'device'
  commands: [term: string, description: string][]
  load: () => Promise<Register>
}

export const COMMAND_TABLE: CommandModule[] = [
  {
    parent: 'program',
    commands: [['init [options]', 'create the data directory, the CA and the broker certificate; safe to run again (never replaces a CA)']],
    load: async () => (await import('./init.ts')).registerInit,
  },
  {
    parent: 'device',
    commands: [['create [options] <id>', 'register a device and issue its certificate (a new key, or signed from --csr)']],
    load: async () => (await import('./device-create.ts')).registerDeviceCreate,
  },
  {
    parent: 'device',
    commands: [['create-batch [options]', 'register N devices <prefix>0001..<prefix>N in one transaction, writing a bundle for each']],
    load: async () => (await import('./device-create-batch.ts')).registerDeviceCreateBatch,
  },
  {
    parent: 'device',
    commands: [['list [options]', 'list registered devices, by id; every filter given must hold']],
    load: async () => (await import('./device-list.ts')).registerDeviceList,
  },
  {
    parent: 'device',
    commands: [['show [options] <id>', 'show a device and every certificate it has held']],
    load: async () => (await import('./device-show.ts')).registerDeviceShow,
  },
  {
    parent: 'device',
    commands: [['renew [options] <id>', 'issue a new certificate for a device; the previous one keeps working for the renewal overlap']],
    load: async () => (await import('./device-renew.ts')).registerDeviceRenew,
  },
  {
    parent: 'device',
    commands: [
      ['revoke [options] <id>', 'revoke a device and all its certificates, permanently; a running broker disconnects it within a second'],
    ],
    load: async () => (await import('./device-revoke.ts')).registerDeviceRevoke,
  },
  {
    parent: 'device',
    commands: [
      ['disable [options] <id>', 'stop a device from connecting until it is enabled again'],
      ['enable [options] <id>', 'let a disabled device connect again'],
    ],
    load: async () => (await import('./device-status.ts')).registerDeviceStatus,
  },
  {
    parent: 'device',
    commands: [['limits', "a device's own limits, over its tier's (gatehouse tier)"]],
    load: async () => (await import('./device-limits.ts')).registerDeviceLimits,
  },
  {
    parent: 'device',
    commands: [
      [
        'update [options] <id>',
        "change a device's group, tier or labels (audited as device.updated; a running broker applies it to the device's live session within a second)",
      ],
    ],
    load: async () => (await import('./device-update.ts')).registerDeviceUpdate,
  },
  {
    parent: 'device',
    commands: [
      ['bulk', 'disable, enable, revoke or move every device a selector matches (--group, --label, --status, --tier), at most --max'],
    ],
    load: async () => (await import('./device-bulk.ts')).registerDeviceBulk,
  },
  {
    parent: 'program',
    commands: [['crl [options]', 'print or write the current CRLs, one signed by each issuing CA (reissued if stale)']],
    load: async () => (await import('./crl.ts')).registerCrl,
  },
  {
    parent: 'program',
    commands: [['claim', 'claim certificates: zero-touch provisioning of devices over MQTT']],
    load: async () => (await import('./claim.ts')).registerClaim,
  },
  {
    parent: 'program',
    commands: [['ca', 'the certificate authority: show it, rotate the issuing CA']],
    load: async () => (await import('./ca.ts')).registerCa,
  },
  {
    parent: 'program',
    commands: [['audit [options]', 'show the audit log, newest first']],
    load: async () => (await import('./audit.ts')).registerAudit,
  },
  {
    parent: 'program',
    commands: [['apikey', 'create, list, rotate and revoke API keys for the HTTP API']],
    load: async () => (await import('./apikey.ts')).registerApiKey,
  },
  {
    parent: 'program',
    commands: [['settings', 'device settings: fleet defaults < group < device overrides, pushed to devices/{id}/settings']],
    load: async () => (await import('./settings.ts')).registerSettings,
  },
  {
    parent: 'program',
    commands: [['tier', "tiers' limits: broker publish and packet rates, AI budgets"]],
    load: async () => (await import('./tier.ts')).registerTier,
  },
  {
    parent: 'program',
    commands: [['route', "telemetry routes: a group's or the fleet's telemetry POSTed to an HTTP endpoint"]],
    load: async () => (await import('./route.ts')).registerRoute,
  },
  {
    parent: 'program',
    commands: [['app', "apps: MQTT identities that read devices' telemetry within a scope"]],
    load: async () => (await import('./app.ts')).registerApp,
  },
  {
    parent: 'program',
    commands: [
      [
        'check [options]',
        'audit the fleet offline: expiring certificates and CAs, shared keys, silent devices, loose credentials, file modes',
      ],
    ],
    load: async () => (await import('./check.ts')).registerCheck,
  },
  {
    parent: 'program',
    commands: [
      ['status [options]', 'is Gatehouse running and ready? asks its /healthz and /readyz, and counts the devices of the data directory'],
    ],
    load: async () => (await import('./status.ts')).registerStatus,
  },
  {
    parent: 'program',
    commands: [['migrate [options]', "copy a stopped node's registry from SQLite into an empty PostgreSQL database (cluster mode)"]],
    load: async () => (await import('./migrate.ts')).registerMigrate,
  },
]

const DEVICE_DESCRIPTION = 'provision, inspect, renew, revoke, disable, enable and update devices, one at a time or in bulk'

/** The command a call names, as its words: `gatehouse device list --json` -> ['device', 'list'] (`help` dropped). */
export function namedCommand(argv: readonly string[]): string[] {
  const args = argv.slice(2)
  const end = args.indexOf('--')
  const words = (end < 0 ? args : args.slice(0, end)).filter((a) => !a.startsWith('-'))
  return words[0] === 'help' ? words.slice(1) : words
}

const nameOf = (term: string) => term.split(' ')[0] as string

/** How a summarised command shows in its parent's help: the table's term (it has no options or arguments of its own). */
const summaryTerms = new WeakMap<Command, string>()

/**
 * Registers every operator command of the control plane on the program, in the order --help lists them.
 * A command the call names (`named`, from namedCommand) is registered by its module; every other one as its
 * summary from the table: its name and description, for its parent's help. With `named` undefined, every
 * command is registered by its module (tests, and anything that walks the whole tree).
 */
export async function registerProvisioningCommands(program: Command, deps: CliDeps, named?: readonly string[]): Promise<void> {
  const defaultTerm = new Help().subcommandTerm
  program.configureHelp({ subcommandTerm: (cmd) => summaryTerms.get(cmd) ?? defaultTerm.call(new Help(), cmd) })
  let device: Command | undefined
  for (const entry of COMMAND_TABLE) {
    if (entry.parent === 'device' && !device) device = program.command('device').description(DEVICE_DESCRIPTION)
    const parent = entry.parent === 'device' ? (device as Command) : program
    const at = entry.parent === 'device' ? 1 : 0
    const wanted =
      named === undefined ||
      ((entry.parent === 'program' || named[0] === 'device') && entry.commands.some(([term]) => named[at] === nameOf(term)))
    if (wanted) (await entry.load())(parent, deps)
    else for (const [term, description] of entry.commands) summarise(parent, term, description)
  }
}

function summarise(parent: Command, term: string, description: string): void {
  const cmd = parent
    .command(nameOf(term))
    .description(description)
    .action(() => {
      // namedCommand found every command commander can dispatch to: this is a bug, said as one
      throw new Error(`the command '${term}' was not loaded`)
    })
  summaryTerms.set(cmd, term)
}
