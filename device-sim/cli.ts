import { type Command, Option } from 'commander'
import type { DeviceBundle } from './fleet.ts'

/**
 * `gatehouse sim`: N simulated devices against a running Gatehouse (README "Device simulator").
 * This file only declares the command; the run (mqtt.js, the fleet) is loaded when it runs, so other
 * commands do not pay for it. cli.ts imports this file directly for that reason.
 */

export const DEFAULT_BROKER_URL = 'mqtts://localhost:8883'

export interface SimProvisionOptions {
  dataDir?: string
  group: string
  tier?: string
  /** where the bundle folders <id>/ go */
  bundlesDir: string
}

export interface SimCliDeps {
  io: { out(text: string): void; err(text: string): void; isTty: boolean }
  /** creates devices exactly as `gatehouse device create` does (the control plane), writing <bundlesDir>/<id>/ */
  provision(ids: string[], options: SimProvisionOptions): Promise<DeviceBundle[]>
  /**
   * With --provision, the bundles found for reuse whose certificate is not the device's current one in
   * the registry (issued by another CA after a fresh init or with another --data-dir, renewed, revoked):
   * each with why. None: all may be reused.
   */
  staleBundles?(bundles: DeviceBundle[], options: Pick<SimProvisionOptions, 'dataDir'>): Promise<{ deviceId: string; why: string }[]>
  /** runs handler on SIGINT / SIGTERM; returns the unsubscribe. Default: the process's signals */
  onSignal?(handler: (signal: string) => void): () => void
}

export interface SimOptions {
  devices: number
  broker: string
  rate: number
  duration?: number
  provision?: boolean
  claim?: string
  tokens?: string
  prefix: string
  group: string
  tier?: string
  bundles: string
  qos: '0' | '1'
  renew: boolean
  reportEvery: number
  dataDir?: string
  json?: boolean
}

function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'commander.invalidArgument' })
}

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw usage(`${name} must be a whole number >= 1, not '${v}'`)
  return Number(v)
}
const positiveNumber = (name: string) => (v: string) => {
  const n = Number(v)
  if (!/^\d*\.?\d+$/.test(v) || !(n > 0)) throw usage(`${name} must be a number > 0, not '${v}'`)
  return n
}

/** '30s', '5m', '1h', '250ms' or plain seconds, in ms. */
export function parseDuration(v: string): number {
  const m = /^(\d*\.?\d+)(ms|s|m|h)?$/.exec(v.trim())
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN
  if (!(ms > 0)) throw usage(`--duration must be like 30s, 5m or 1h, not '${v}'`)
  return ms
}

/** sim-0001 .. sim-NNNN (at least four digits) */
export function simIds(count: number, prefix: string): string[] {
  const width = Math.max(4, String(count).length)
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`)
}

export function registerSim(program: Command, deps: SimCliDeps): void {
  program
    .command('sim')
    .description('run N simulated devices: telemetry, settings, insights and certificate renewal over mutual-TLS MQTT')
    .requiredOption('--devices <n>', 'how many devices', positiveInt('--devices'))
    .option('--broker <url>', 'the broker', DEFAULT_BROKER_URL)
    .option('--rate <r>', 'telemetry messages per second per device, until a setting `interval` arrives', positiveNumber('--rate'), 0.2)
    .option('--duration <d>', 'how long to run: 30s, 5m, 1h (default: until Ctrl-C / SIGTERM)', parseDuration)
    .addOption(
      new Option(
        '--provision',
        'create missing devices <prefix>0001..N first (like `device create`), reusing bundle folders that exist',
      ).conflicts('claim'),
    )
    .option('--claim <dir>', 'provision missing devices by claim over MQTT with the claim bundle in DIR (cert.pem, key.pem, ca.pem)')
    .option('--tokens <file>', 'with --claim: one-time claim tokens, one per line, one used per device')
    .option('--prefix <prefix>', 'device id prefix with --provision / --claim', 'sim-')
    .option('--group <group>', 'group of the devices --provision creates (one group settings change reaches all)', 'sim')
    .option('--tier <tier>', 'tier of the devices --provision creates')
    .option('--bundles <dir>', 'device bundle folders <dir>/<id>/{cert.pem,key.pem,ca.pem}', './devices')
    .addOption(new Option('--qos <qos>', 'QoS of telemetry').choices(['0', '1']).default('1'))
    .option('--no-renew', 'do not renew certificates over MQTT when they enter their renewal window')
    .option('--report-every <s>', 'seconds between summary lines when stderr is not a terminal', positiveNumber('--report-every'), 10)
    .option('--data-dir <dir>', 'data directory, for --provision (default ./data, or GATEHOUSE_DATA_DIR)')
    .option('--json', 'print the final summary as JSON')
    .action(async (options: SimOptions) => {
      const { runSim } = await import('./sim-command.ts')
      await runSim(options, deps)
    })
}

export interface SimSummary {
  broker: string
  devices: number
  connected: number
  everConnected: number
  sent: number
  acked: number
  messagesPerSecond: number
  settingsApplied: number
  insights: number
  throttled: number
  alerts: number
  renewals: number
  reconnects: number
  dropped: number
  errors: number
  durationSeconds: number
}
