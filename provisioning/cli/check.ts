import { Option, type Command } from 'commander'
import { SEVERITIES, failsAt, type CheckReport, type Severity } from '../checks/index.ts'
import { ChecksFailed } from '../errors.ts'
import { addCommonOptions, addJsonOption, positiveInt, printJson, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'

interface Options extends CommonOptions {
  failOn: Severity
  silentDays: number
}

export function registerCheck(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('check')
    .description('audit the fleet offline: expiring certificates and CAs, shared keys, silent devices, loose credentials, file modes')
    .addOption(new Option('--fail-on <severity>', 'exit 1 on a finding at or above this severity').choices(SEVERITIES).default('high'))
    .option('--silent-days <n>', 'a device not seen for n days is silent', positiveInt('--silent-days'), 30)
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    const report = await deps.check({
      ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
      silentDays: options.silentDays,
    })
    if (options.json) printJson(deps.io, report)
    else deps.io.out(humanReport(report))
    if (failsAt(report, options.failOn)) {
      const at = SEVERITIES.slice(SEVERITIES.indexOf(options.failOn))
      throw new ChecksFailed(
        at.reduce((n, s) => n + report.counts[s], 0),
        options.failOn,
      )
    }
  })
}

function humanReport(report: CheckReport): string {
  if (report.findings.length === 0) return `no findings (checked ${report.checkedAt})\n`
  const rows = report.findings.map((f) => {
    const more = f.objects.count > f.objects.ids.length ? ` (+${f.objects.count - f.objects.ids.length} more)` : ''
    return [f.severity.toUpperCase(), f.id, String(f.objects.count), `${f.title}: ${f.objects.ids.join(', ')}${more}`]
  })
  const fixes = report.findings.map((f) => `  ${f.id}: ${f.fix}`)
  const summary = Object.entries(report.counts)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ')
  return `${table([['SEVERITY', 'CHECK', 'COUNT', 'FINDING'], ...rows])}\nwhat to do:\n${fixes.join('\n')}\n\n${summary} (checked ${report.checkedAt})\n`
}
