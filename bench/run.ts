// npm run bench [-- <scenario>... [--help]]: runs the named benchmark scenarios (all when none is named),
// prints a table for each and saves JSON under bench/results/ (ignored by git). Benchmarks are not
// tests: they measure, they do not pass or fail (see docs/conventions.md §29 for how to read them).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureBuilt } from './built.ts'
import { scenarioHelp, scenarios } from './scenarios.ts'

const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const unknown = requested.filter((r) => !(r in scenarios))
if (unknown.length) {
  console.error(`unknown scenario ${unknown.join(', ')}; known: ${Object.keys(scenarios).join(', ')}`)
  process.exit(2)
}
const names = requested.length ? requested : Object.keys(scenarios)
if (process.argv.includes('--help')) {
  console.log(`npm run bench [-- <scenario>...] [--help]; scenarios: ${Object.keys(scenarios).join(', ')}`)
  for (const name of names) if (scenarioHelp[name]) console.log(`\n${scenarioHelp[name]}`)
  process.exit(0)
}
// the Gatehouse brokers run the compiled code (bench/brokers/gatehouse-broker.ts), unless BENCH_GATEHOUSE=tsx
if (process.env.BENCH_GATEHOUSE !== 'tsx') ensureBuilt()
const resultsDir = join(import.meta.dirname, 'results')
mkdirSync(resultsDir, { recursive: true })
for (const name of names) {
  console.log(`\n== ${name}`)
  const result = await scenarios[name]!()
  const file = join(resultsDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ scenario: name, at: new Date().toISOString(), node: process.version, ...result }, null, 2))
  console.log(`saved ${file}`)
}
