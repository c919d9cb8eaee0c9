import type { Command } from 'commander'
import { StatusNotReady, StatusNotRunning } from '../errors.ts'
import { deviceCounts, fetchHealth } from '../health/health-client.ts'
import type { HealthReport } from '../health/health.ts'
import { addCommonOptions, addJsonOption, printJson, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'

interface Options extends CommonOptions {
  httpHost?: string
  httpPort?: number
}

/**
 * `gatehouse status`: the running Gatehouse's /healthz and /readyz, asked over HTTP(S) where the
 * configuration says it serves, and the data directory's device counts. Exit 0 ready, 1 not ready
 * (GH_STATUS_NOT_READY) or unreachable, 2 not running (GH_STATUS_NOT_RUNNING).
 */
export function registerStatus(program: Command, deps: CliDeps): void {
  const cmd = program
    .command('status')
    .description('is Gatehouse running and ready? asks its /healthz and /readyz, and counts the devices of the data directory')
    .option('--http-host <address>', 'the --http-host Gatehouse was started with (default from the configuration)')
    .option('--http-port <port>', 'the --http-port Gatehouse was started with (default from the configuration)')
  addJsonOption(addCommonOptions(cmd)).action(async (options: Options) => {
    const { target, dataDir, databaseUrl } = await deps.statusTarget(options)
    const devices = await deviceCounts(dataDir, databaseUrl)
    let reports: { liveness: HealthReport; readiness: HealthReport }
    try {
      reports = await fetchHealth(target)
    } catch (err) {
      if (err instanceof StatusNotRunning) print(deps, options, { url: target.url, running: false, devices })
      throw err
    }
    const ready = reports.liveness.status === 'ok' && reports.readiness.status === 'ok'
    print(deps, options, { url: target.url, running: true, ready, ...reports, devices })
    if (!ready) throw new StatusNotReady(target.url, failedChecks(reports).join(', '))
  })
}

interface StatusView {
  url: string
  running: boolean
  ready?: boolean
  liveness?: HealthReport
  readiness?: HealthReport
  devices: Record<string, number> | null
}

function print(deps: CliDeps, options: Options, view: StatusView): void {
  if (options.json) return printJson(deps.io, view)
  const state = !view.running ? 'not running' : view.ready ? 'ready' : 'NOT READY'
  deps.io.out(`Gatehouse on ${view.url}: ${state}\n`)
  const checks = { ...view.liveness?.checks, ...view.readiness?.checks }
  if (Object.keys(checks).length > 0) {
    const rows = Object.entries(checks).map(([name, c]) => [name, c.status, c.status === 'failed' ? `${c.code}: ${c.reason}` : ''])
    deps.io.out(table([['CHECK', 'STATUS', 'REASON'], ...rows]))
  }
  const d = view.devices
  deps.io.out(
    d ? `devices: ${d.active} active, ${d.disabled} disabled, ${d.revoked} revoked\n` : 'devices: no registry in the data directory\n',
  )
}

function failedChecks(reports: { liveness: HealthReport; readiness: HealthReport }): string[] {
  return Object.entries({ ...reports.liveness.checks, ...reports.readiness.checks })
    .filter(([, c]) => c.status === 'failed')
    .map(([name]) => name)
}
