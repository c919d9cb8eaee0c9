import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DeviceCredentials } from '../helpers/broker-pki.ts'
import {
  checkBroker,
  FUZZ_LANES,
  fuzzDevice,
  runCase,
  startFuzzBroker,
  startWatcher,
  type FuzzBroker,
  type Watcher,
} from './fuzz-target.ts'
import { fuzzCase, type FuzzCase, type FuzzPhase } from './mqtt-cases.ts'
import type { CaseOutcome } from './fuzz-target.ts'
import type { FuzzBrokerState } from './fuzz-broker.ts'

/** Every input that ever crashed or hung the broker, replayed first by every run (issue 17). */
export const REGRESSIONS_DIR = join(import.meta.dirname, '..', 'fixtures', 'fuzz-regressions')

export interface FuzzOptions {
  seed: number
  cases: number
  /** cases between two broker checks */
  batchSize?: number
  /** where a new crashing or hanging input is saved (the script: REGRESSIONS_DIR; the test: nowhere) */
  saveTo?: string
  progress?: (line: string) => void
  /** stop after this many failures (default 20) */
  maxFailures?: number
}

export interface FuzzFailure {
  id: string
  kind: string
  phase: FuzzPhase
  problem: string
  saved?: string
}

export interface FuzzVerdict {
  seed: number
  cases: number
  regressions: number
  batches: number
  failures: FuzzFailure[]
  /** the broker process after its first check and after the last one (after a forced GC), bytes */
  rssBefore: number
  rssAfter: number
  heapBefore: number
  heapAfter: number
  /** markers the watching device received, of the batches run */
  watcherReceived: number
  outcomes: Record<string, number>
  tlsFailures: Record<string, number>
  ms: number
}

interface RegressionFile {
  deviceId: string
  phase: FuzzPhase
  kind: string
  hex: string
  found: string
}

export function loadRegressions(dir = REGRESSIONS_DIR): FuzzCase[] {
  let names: string[] = []
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'))
  } catch {
    return []
  }
  return names.sort().map((name) => {
    const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as RegressionFile
    return { id: `regression/${name}`, deviceId: r.deviceId, phase: r.phase, kind: r.kind, bytes: Buffer.from(r.hex, 'hex') }
  })
}

interface Session {
  broker: FuzzBroker
  watcher: Watcher
  /** by device id */
  creds: Map<string, DeviceCredentials>
}

async function startSession(): Promise<Session> {
  const broker = await startFuzzBroker()
  const creds = new Map<string, DeviceCredentials>()
  for (let lane = 0; lane < FUZZ_LANES; lane++) {
    const deviceId = fuzzDevice(lane)
    creds.set(deviceId, await broker.request<DeviceCredentials>({ op: 'device', deviceId }))
  }
  return { broker, creds, watcher: await startWatcher(broker) }
}

/** Runs the cases FUZZ_LANES at a time (one lane per device); the outcome of each, in order. */
async function runCases(s: Session, cases: FuzzCase[]): Promise<CaseOutcome[]> {
  const outcomes: CaseOutcome[] = []
  const lanes = Array.from({ length: FUZZ_LANES }, async (_, lane) => {
    for (let i = lane; i < cases.length && s.broker.isAlive(); i += FUZZ_LANES) {
      const c = cases[i] as FuzzCase
      outcomes[i] = await runCase(s.broker.port, s.creds.get(c.deviceId) as DeviceCredentials, c)
    }
  })
  await Promise.all(lanes)
  return outcomes
}

async function stopSession(s: Session): Promise<void> {
  s.watcher.client.end(true)
  await s.broker.stop()
}

/**
 * Replays a failed batch one case at a time, the broker asked for its state after each: a case after which
 * it is gone (or that hung, or after which a good CONNECT was refused) is a culprit, and the replay goes on
 * with a fresh broker. Returns the culprits with what they did, and the session to continue with.
 */
async function isolate(cases: FuzzCase[], session: Session): Promise<{ culprits: [FuzzCase, string][]; session: Session }> {
  const culprits: [FuzzCase, string][] = []
  for (const c of cases) {
    const [outcome] = await runCases(session, [c])
    const problem = await session.broker.request<FuzzBrokerState>({ op: 'state' }).then(
      (state) => (state.errors.length ? `the broker logged errors: ${state.errors.join(' | ')}` : null),
      () => 'the broker process exited',
    )
    const found =
      problem ??
      (outcome === 'hang' ? 'the broker did not close the connection' : outcome === 'connect-refused' ? 'a good CONNECT was refused' : null)
    if (found === null) continue
    culprits.push([c, found])
    await stopSession(session)
    session = await startSession()
  }
  return { culprits, session }
}

function save(dir: string, c: FuzzCase, problem: string): string {
  mkdirSync(dir, { recursive: true })
  const name = `${c.id.replace(/[^a-z0-9]+/gi, '-')}.json`
  const file: RegressionFile = { deviceId: c.deviceId, phase: c.phase, kind: c.kind, hex: c.bytes.toString('hex'), found: problem }
  writeFileSync(join(dir, name), `${JSON.stringify(file, null, 2)}\n`)
  return name
}

/**
 * The regressions, then `cases` seeded cases, in batches on one broker process. A failed batch is
 * narrowed down by replaying each of its cases alone; the culprits are reported (and saved) and the
 * run goes on with a fresh broker.
 */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzVerdict> {
  const started = performance.now()
  const batchSize = opts.batchSize ?? 50
  const regressions = loadRegressions()
  const all: FuzzCase[] = [...regressions, ...Array.from({ length: opts.cases }, (_, i) => fuzzCase(opts.seed, i, fuzzDevice(i)))]
  const outcomes: Record<string, number> = {}
  const failures: FuzzFailure[] = []
  let session = await startSession()
  const first = await checkBroker(session.broker, session.watcher, -1)
  if (!first.ok || !first.state) throw new Error(`the fuzz broker failed its first check: ${first.problem}`)
  let last = first.state
  let batches = 0
  let watcherReceived = 0
  for (let at = 0; at < all.length; at += batchSize) {
    const batch = all.slice(at, at + batchSize)
    const results = await runCases(session, batch)
    for (const outcome of results) if (outcome) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
    const odd = results.filter((o) => o !== 'closed').length
    const check = odd
      ? { ok: false, problem: `${odd} cases hung or were refused a good CONNECT` }
      : await checkBroker(session.broker, session.watcher, batches)
    batches++
    if (check.ok && check.state) {
      last = check.state
      watcherReceived = session.watcher.received.length
      opts.progress?.(`${Math.min(at + batchSize, all.length)}/${all.length} cases, broker rss ${mb(last.rss)} heap ${mb(last.heapUsed)}`)
      continue
    }
    opts.progress?.(`batch ${batches} failed (${check.problem}); replaying its ${batch.length} cases one by one`)
    await stopSession(session)
    const found = await isolate(batch, await startSession())
    session = found.session
    for (const [c, problem] of found.culprits) {
      const saved = opts.saveTo ? save(opts.saveTo, c, problem) : undefined
      failures.push({ id: c.id, kind: c.kind, phase: c.phase, problem, ...(saved ? { saved } : {}) })
    }
    if (!found.culprits.length) failures.push({ id: `batch ${batches}`, kind: 'batch', phase: 'post', problem: check.problem ?? 'failed' })
    if (failures.length >= (opts.maxFailures ?? 20)) break
  }
  await stopSession(session)
  return {
    seed: opts.seed,
    cases: opts.cases,
    regressions: regressions.length,
    batches,
    failures,
    rssBefore: first.state.rss,
    rssAfter: last.rss,
    heapBefore: first.state.heapUsed,
    heapAfter: last.heapUsed,
    watcherReceived,
    outcomes,
    tlsFailures: last.tlsFailures,
    ms: Math.round(performance.now() - started),
  }
}

export const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
