import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { calibrate, makeTemplate, runRound, SCENARIOS, seeded, type RoundResult, type Scenario } from './chaos.ts'

/**
 * `npm run chaos -- --rounds N --seed S [--scenario batch,settings,...]`: N rounds of each scenario, each
 * killing a real gatehouse process with SIGKILL at a point the seeded generator picks within the
 * scenario's window; prints one line per round and a verdict, saves JSON to bench/results/, exits 1 on
 * any violation. Replay a round with the same --seed.
 */
const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, seed: { type: 'string', default: '1' }, scenario: { type: 'string' } },
})
const rounds = Number(values.rounds)
const seed = Number(values.seed)
const scenarios = (values.scenario?.split(',') ?? [...SCENARIOS]) as Scenario[]
const random = seeded(seed)
const template = await makeTemplate()
const results: RoundResult[] = []
try {
  const windows = new Map<Scenario, number>()
  for (const scenario of scenarios) windows.set(scenario, await calibrate(template, scenario))
  console.log(`kill windows (ms): ${[...windows].map(([s, w]) => `${s} ${w}`).join(', ')}`)
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of scenarios) {
      const killAtMs = Math.round(random() * windows.get(scenario)!)
      const r = await runRound(template, scenario, round, killAtMs)
      results.push(r)
      console.log(
        `${scenario.padEnd(10)} round ${round}: killed at ${String(killAtMs).padStart(5)} ms, ${String(r.acknowledged).padStart(4)} acknowledged, ${r.violations.length ? `VIOLATIONS: ${r.violations.join('; ')}` : 'ok'}`,
      )
    }
  }
} finally {
  rmSync(template.root, { recursive: true, force: true })
}
const failed = results.filter((r) => r.violations.length)
const verdict = failed.length === 0 ? 'PASS' : 'FAIL'
const acknowledged = results.reduce((n, r) => n + r.acknowledged, 0)
console.log(
  `verdict: ${verdict}: ${results.length} kills (seed ${seed}), ${acknowledged} acknowledged operations, ${failed.length} rounds with violations`,
)
mkdirSync(join(import.meta.dirname, '../../bench/results'), { recursive: true })
const file = join(import.meta.dirname, '../../bench/results', `chaos-${seed}-${Date.now()}.json`)
writeFileSync(file, JSON.stringify({ seed, rounds, scenarios, verdict, results }, null, 2))
console.log(`saved ${file}`)
process.exitCode = failed.length ? 1 : 0
