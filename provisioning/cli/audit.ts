import type { Command } from 'commander'
import { addCommonOptions, addJsonOption, positiveInt, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'

interface Options extends CommonOptions {
  device?: string
  action?: string
  limit: number
}

export function registerAudit(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('audit')
    .description('show the audit log, newest first')
    .option('--device <id>', 'only entries about this device')
    .option('--action <action>', 'only this action, e.g. device.revoked or connect.refused')
    .option('--limit <n>', 'at most n entries', positiveInt('--limit'), 100)
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    await withAuthority(deps, options, async (authority) => {
      const entries = await authority.listAudit({
        ...(options.device !== undefined && { subject: options.device }),
        ...(options.action !== undefined && { action: options.action }),
        limit: options.limit,
      })
      if (options.json)
        return printJson(
          deps.io,
          entries.map((e) => ({ ...e, at: e.at.toISOString() })),
        )
      if (entries.length === 0) return deps.io.out('no audit entries\n')
      deps.io.out(
        table([
          ['TIME', 'ACTOR', 'ACTION', 'SUBJECT', 'DETAILS'],
          ...entries.map((e) => [e.at.toISOString(), e.actor, e.action, e.subject, JSON.stringify(e.details)]),
        ]),
      )
    })
  })
}
