import { abuseBenchmark, abuseHelp } from './abuse.ts'
import { aiHandoffBenchmark } from './ai-handoff.ts'
import { appsBenchmark } from './apps.ts'
import { cliBenchmark } from './cli.ts'
import { clusterBenchmark } from './cluster.ts'
import { connectBenchmark } from './connect.ts'
import { hsmBenchmark } from './hsm.ts'
import { provisionBenchmark } from './provision.ts'
import { routesBenchmark } from './routes.ts'
import { settingsBenchmark } from './settings.ts'
import { throughputBenchmark } from './throughput.ts'

export type Scenario = () => Promise<Record<string, unknown>>

export const scenarios: Record<string, Scenario> = {
  provision: provisionBenchmark,
  connect: connectBenchmark,
  throughput: throughputBenchmark,
  settings: settingsBenchmark,
  'ai-handoff': aiHandoffBenchmark,
  abuse: abuseBenchmark,
  hsm: hsmBenchmark,
  routes: routesBenchmark,
  apps: appsBenchmark,
  cli: cliBenchmark,
  cluster: clusterBenchmark,
}

/** `npm run bench -- <scenario> --help` prints these (scenarios without one are described in their file) */
export const scenarioHelp: Record<string, string> = { abuse: abuseHelp }
