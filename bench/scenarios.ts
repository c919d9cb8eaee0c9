import { provisionBenchmark } from './provision.ts'

export type Scenario = () => Promise<Record<string, unknown>>

export const scenarios: Record<string, Scenario> = {
  provision: provisionBenchmark,
}
