import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { calibrate, COMMAND_SCENARIOS, makeTemplate, runRound, SCENARIOS, seeded, type RoundResult, type Scenario } from './chaos.ts'

/**
 * `npm run chaos -- --rounds N --seed S [--scenario batch,settings,...]`: N rounds of each scenario, each
 * killing a real gatehouse process with SIGKILL at a point the seeded generator picks within the
 * scenario's window; a command (batch, ca-rotate) is also killed once per round at a seeded point after its
 * registry commit, seen from outside (the rows readable, ca/next present), up to its exit. Prints one line per
 * kill with where it landed (its phase), the count of kills per phase and a verdict, saves JSON to
 * bench/results/, exits 1 on any violation. Replay a round with the same --seed.
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
  const windows = new Map<Scenario, { window: number; afterCommit?: number }>()
  for (const scenario of scenarios) windows.set(scenario, await calibrate(template, scenario))
  console.log(
    `kill windows (ms): ${[...windows].map(([s, w]) => `${s} ${w.window}${w.afterCommit ? ` (+ ${w.afterCommit} after the commit)` : ''}`).join(', ')}`,
  )
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of scenarios) {
      const w = windows.get(scenario)!
      const kills: ['from-start' | 'after-commit', number][] = [['from-start', Math.round(random() * w.window)]]
      if (COMMAND_SCENARIOS.includes(scenario)) kills.push(['after-commit', Math.round(random() * w.afterCommit!)])
      for (const [timing, killAtMs] of kills) {
        const r = await runRound(template, scenario, round, killAtMs, timing)
        results.push(r)
        console.log(
          `${scenario.padEnd(10)} round ${round}: killed ${String(killAtMs).padStart(5)} ms ${timing === 'after-commit' ? 'after its commit' : 'after its start '}, ${String(r.acknowledged).padStart(4)} acknowledged, ${r.phase}: ${r.violations.length ? `VIOLATIONS: ${r.violations.join('; ')}` : 'ok'}`,
        )
      }
    }
  }
} finally {
  rmSync(template.root, { recursive: true, force: true })
}
const failed = results.filter((r) => r.violations.length)
const phases: Record<string, Record<string, number>> = {}
for (const r of results) {
  const of = (phases[r.scenario] ??= {})
  of[r.phase] = (of[r.phase] ?? 0) + 1
}
for (const [scenario, counts] of Object.entries(phases))
  console.log(
    `phases ${scenario.padEnd(10)} ${Object.entries(counts)
      .map(([p, n]) => `${n} x ${p}`)
      .join(', ')}`,
  )
const verdict = failed.length === 0 ? 'PASS' : 'FAIL'
const acknowledged = results.reduce((n, r) => n + r.acknowledged, 0)
console.log(
  `verdict: ${verdict}: ${results.length} kills (seed ${seed}), ${acknowledged} acknowledged operations, ${failed.length} rounds with violations`,
)
mkdirSync(join(import.meta.dirname, '../../bench/results'), { recursive: true })
const file = join(import.meta.dirname, '../../bench/results', `chaos-${seed}-${Date.now()}.json`)
writeFileSync(file, JSON.stringify({ seed, rounds, scenarios, verdict, phases, results }, null, 2))
console.log(`saved ${file}`)
process.exitCode = failed.length ? 1 : 0
