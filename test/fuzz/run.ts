// npm run fuzz [-- --cases N --seed S --batch B]: fuzzes a real broker (its own process, real mutual TLS) with
// seeded MQTT cases (test/fuzz/mqtt-cases.ts) after replaying every saved regression, prints a verdict and
// exits 1 when any case crashed or hung the broker; such a case is saved under test/fixtures/fuzz-regressions/.
// --target files: the operator's files instead (test/fuzz/run-files.ts), through the real CLI.
import { parseArgs } from 'node:util'
import { FILE_REGRESSIONS_DIR, runFileFuzz } from './run-files.ts'
import { mb, REGRESSIONS_DIR, runFuzz } from './run-fuzz.ts'

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '5000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    batch: { type: 'string', default: '100' },
    target: { type: 'string', default: 'mqtt' },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  console.log(
    'npm run fuzz -- [--target mqtt|files (mqtt)] [--cases N (5000)] [--seed S (from the clock)] [--batch B (100): cases between broker checks]',
  )
  process.exit(0)
}
const num = (name: string, v: string) => {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`)
    process.exit(2)
  }
  return n
}
const cases = num('cases', values.cases)
const seed = num('seed', values.seed)
const batchSize = Math.max(1, num('batch', values.batch))
if (values.target !== 'mqtt' && values.target !== 'files') {
  console.error(`--target must be mqtt or files, got ${JSON.stringify(values.target)}`)
  process.exit(2)
}
if (values.target === 'files') {
  console.log(`fuzzing the operator's files: ${cases} cases, seed ${seed}`)
  const v = await runFileFuzz({ seed, cases, saveTo: FILE_REGRESSIONS_DIR, progress: (line) => console.log(`  ${line}`) })
  console.log(`
verdict: ${v.failures.length === 0 ? 'PASS' : 'FAIL'}
  cases            ${v.cases} (seed ${seed}) + ${v.regressions} saved regressions, ${(v.ms / 1000).toFixed(1)} s
  failures         ${v.failures.length} (a stack trace, no coded error, the registry changed by a refused file, or a hang)
  outcomes         ${JSON.stringify(v.outcomes)}`)
  for (const f of v.failures) console.log(`  FAIL ${f.id}: ${f.problem}${f.saved ? ` (saved ${f.saved})` : ''}`)
  process.exit(v.failures.length === 0 ? 0 : 1)
}
console.log(`fuzzing: ${cases} cases, seed ${seed}, a broker check every ${batchSize} cases`)
const v = await runFuzz({ seed, cases, batchSize, saveTo: REGRESSIONS_DIR, progress: (line) => console.log(`  ${line}`) })
console.log(`
verdict: ${v.failures.length === 0 ? 'PASS' : 'FAIL'}
  cases            ${v.cases} (seed ${v.seed}) + ${v.regressions} saved regressions, ${v.batches} batches, ${(v.ms / 1000).toFixed(1)} s
  crashes/hangs    ${v.failures.length}
  outcomes         ${JSON.stringify(v.outcomes)}
  broker RSS       ${mb(v.rssBefore)} before, ${mb(v.rssAfter)} after (heap ${mb(v.heapBefore)} -> ${mb(v.heapAfter)}, after GC)
  other devices    the watching device received ${v.watcherReceived} of ${v.batches + 1} markers and was never disconnected; a fresh device connected after every batch
  TLS failures     ${JSON.stringify(v.tlsFailures)}`)
for (const f of v.failures) console.log(`  FAIL ${f.id} ${f.phase} ${f.kind}: ${f.problem}${f.saved ? ` (saved ${f.saved})` : ''}`)
process.exit(v.failures.length === 0 ? 0 : 1)
