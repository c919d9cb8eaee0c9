import { aiHandoffBenchmark } from './ai-handoff.ts'
import { connectBenchmark } from './connect.ts'
import { provisionBenchmark } from './provision.ts'
import { settingsBenchmark } from './settings.ts'
import { throughputBenchmark } from './throughput.ts'

export type Scenario = () => Promise<Record<string, unknown>>

export const scenarios: Record<string, Scenario> = {
  provision: provisionBenchmark,
  connect: connectBenchmark,
  throughput: throughputBenchmark,
  settings: settingsBenchmark,
  'ai-handoff': aiHandoffBenchmark,
}
