import Database from 'better-sqlite3'
import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { cryptoRandom, systemClock } from '../certs/index.ts'
import { connectFleet, type DeviceBundle } from '../device-sim/index.ts'
import { dataDirLayout, initControlPlane, openControlPlane } from '../provisioning/index.ts'
import type { Attack, AttackPlan, AttackReport } from './abuse-attacker.ts'
import { consumerOver, ipcOf } from './brokers/launch.ts'
import type { ParentMessage } from './brokers/ipc.ts'
import { machineLoad, sampleProcess, type ProcSample } from './proc-stats.ts'
import { pacedLoad } from './publish-load.ts'
import { alternate, envInt, fmt, median, printTable } from './table.ts'

export const abuseHelp = `npm run bench -- abuse [--quick]

Does one valid device, one revoked certificate or one app key hurt everybody else? Against a Gatehouse
started in its own process (bench/brokers/gatehouse-broker.ts: loadConfig + startGatehouse on a fresh
data dir, log level info, JSON logs; its gatehouse.json raises only the per-address connection limits,
since every device here comes from 127.0.0.1; every per-device budget and the HTTP rate limit stay as
shipped), DEVICES well-behaved devices publish telemetry (QoS 1, 256 B, paced at RATE msg/s in all,
round robin). Five phases of SECONDS each, each on a fresh broker (a copy of the provisioned data dir)
after 3 s of unmeasured warm-up: the baseline (the publishers alone), then the same load with each
attack alone, then with all three at once, run from a separate attacker process:
  - subscribe flood: one valid device whose settings document is ~50 KB writes SUBSCRIBE to
    devices/<id>/settings + UNSUBSCRIBE + PINGREQ rounds over a raw TLS socket (up to ROUNDS),
  - refused connects: a revoked device CONNECTs with a 60 KB clientId in a loop (up to CONNECTS,
    4 at a time),
  - schema attack: an app key (settings:write) PUTs group schemas full of ^(a|a)*$ patterns, alternately ~47 KB and ~2 KB
    (up to PUTS, each a new one) and, alongside, PATCHes a device of that group with
    'a' x REDOS_LEN + 'b' (up to PATCHES), which the schema's pattern has to reject.
Publish-to-deliver: the publisher's hrtime stamped in the payload -> arrival at Gatehouse's consumer API
(broker.onDevicePublish, inside the broker process: what apps and the AI bridge get; a device may not
subscribe to another device's telemetry), p50/p99 over every message of the phase; lost = published
but not delivered within 10 s after the phase. Also per phase: broker RSS (VmRSS sampled every 250 ms:
max and at the end), broker CPU (utime+stime / wall), audit rows and database bytes added, log bytes the
broker wrote. Aims (issue 10), per attack phase: p99 <= 2x the baseline's, max RSS <= the baseline's
+ 50 MiB. On 2 shared cores the attacker process competes for CPU too: its CPU is reported.
A table is printed and JSON saved under bench/results/.

Options (environment):            default   --quick
  BENCH_ABUSE_DEVICES                 200       200
  BENCH_ABUSE_RATE  (msg/s, all)      400       400
  BENCH_ABUSE_SECONDS (per phase)      20         8
  BENCH_REPS  (all phases, repeated)    1         1   (> 1: medians, phase order reversed on even reps)
  BENCH_ABUSE_ROUNDS                 5000      2000
  BENCH_ABUSE_CONNECTS                500       100
  BENCH_ABUSE_PUTS                    300        60
  BENCH_ABUSE_PATCHES                   5         3
  BENCH_ABUSE_REDOS_LEN                24        22
  BENCH_ABUSE_CONSUMER  (listener|subscribe)  listener  (subscribe: an in-broker aedes subscription)
  BENCH_ABUSE_AI        (on|off)       off       off   (on: Gatehouse's AI bridge on, as shipped; its
                                                         own latency spikes hide the attacks' effect)
Every attack stops at its count or at the phase's end, whichever comes first.`

const quick = process.argv.includes('--quick')
const DEVICES = envInt('BENCH_ABUSE_DEVICES', 200)
const RATE = envInt('BENCH_ABUSE_RATE', 400)
const SECONDS = envInt('BENCH_ABUSE_SECONDS', quick ? 8 : 20)
const REPS = envInt('BENCH_REPS', 1)
const ROUNDS = envInt('BENCH_ABUSE_ROUNDS', quick ? 2000 : 5000)
const CONNECTS = envInt('BENCH_ABUSE_CONNECTS', quick ? 100 : 500)
const PUTS = envInt('BENCH_ABUSE_PUTS', quick ? 60 : 300)
const PATCHES = envInt('BENCH_ABUSE_PATCHES', quick ? 3 : 5)
const REDOS_LEN = envInt('BENCH_ABUSE_REDOS_LEN', quick ? 22 : 24)
/**
 * BENCH_ABUSE_AI=on: Gatehouse with its AI bridge on, as shipped. Off by default: with it on, the
 * baseline alone had a p99 of 0.9-2 s at 400 msg/s (p50 under 1 ms in one run, 211 ms in another),
 * which hides what the attacks do; with it off the baseline p99 was 10-20 ms.
 */
const AI_OFF = process.env.BENCH_ABUSE_AI !== 'on'
/**
 * Where deliveries are counted: 'listener' (default), Gatehouse's own consumer API broker.onDevicePublish
 * (what apps and the AI bridge use); 'subscribe', an aedes subscription to devices/+/telemetry/# whose
 * handler completes synchronously (as throughput.ts's). With 'subscribe' the broker died twice under
 * attack with 'RangeError: Maximum call stack size exceeded' (aedes nextBatch -> mqemitter -> that
 * handler -> nextBatch ...), after the attacks had stalled its event loop for seconds.
 */
const CONSUMER = process.env.BENCH_ABUSE_CONSUMER === 'subscribe' ? 'subscribe' : 'listener'
const PAYLOAD_BYTES = 256
const WARMUP_SECONDS = 3
const DRAIN_MS = 10_000
const RSS_SAMPLE_MS = 250
const GROUP = 'abuse'
const MiB = 1024 * 1024

interface PhaseResult {
  phase: string
  seconds: number
  published: number
  publishFailed: number
  delivered: number
  lost: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  rssStartMiB: number
  rssMaxMiB: number
  rssEndMiB: number
  brokerCpuCores: number
  auditRowsAdded: number
  databaseBytesAdded: number
  logBytesAdded: number
  attack: AttackReport | null
  /** set when the broker process died during the phase */
  brokerExit: string | null
}

/** The phases, each on a fresh broker (a copy of the provisioned data dir): the baseline, each attack alone, all at once. */
const PHASES: { name: string; attacks: Attack[] }[] = [
  { name: 'baseline', attacks: [] },
  { name: 'subscribe flood', attacks: ['subscribe'] },
  { name: 'refused connects', attacks: ['refused'] },
  { name: 'schema attack', attacks: ['schema'] },
  { name: 'all attacks', attacks: ['subscribe', 'refused', 'schema'] },
]

export async function abuseBenchmark(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-abuse-'))
  try {
    const fx = await provision(join(dir, 'data'))
    const loadBefore = machineLoad()
    console.log(
      `abuse: ${DEVICES} devices publish ${RATE} msg/s (QoS 1, ${PAYLOAD_BYTES} B) for ${SECONDS} s per phase, a fresh broker per phase, ` +
        `AI bridge ${AI_OFF ? 'off' : 'on'}, consumer ${CONSUMER}`,
    )
    const runs: (PhaseResult & { rep: number })[] = []
    for (let rep = 1; rep <= REPS; rep++) {
      for (const p of alternate(PHASES, rep)) {
        const phaseDir = join(dir, `rep-${rep}-${p.name.replace(/\W+/g, '-')}`)
        cpSync(fx.dataDir, phaseDir, { recursive: true })
        const result = await runPhase(p.name, p.attacks, { ...fx, dataDir: phaseDir })
        runs.push({ ...result, rep })
        rmSync(phaseDir, { recursive: true, force: true })
        console.log(
          `  ${REPS > 1 ? `rep ${rep} ` : ''}${p.name}: p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms, RSS max ${fmt(result.rssMaxMiB, 1)} MiB, ${result.lost} lost` +
            (result.brokerExit ? `, the broker ${result.brokerExit}` : ''),
        )
      }
    }
    const phases = PHASES.map((p) => medianPhase(runs.filter((r) => r.phase === p.name)))
    return { ...summarize(phases, fx.settingsBytes, { before: loadBefore, after: machineLoad() }), reps: REPS, runs }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function runPhase(name: string, attacks: Attack[], fx: Fixture): Promise<PhaseResult> {
  let logBytes = 0
  let stderrTail = ''
  let stopping = false
  let brokerExit: string | null = null
  const broker = spawnChild('brokers/gatehouse-broker.ts', [
    fx.dataDir,
    `--consume=${CONSUMER}`,
    '--limits=file',
    '--log-level=info',
    ...(AI_OFF ? ['--ai-off'] : []),
  ])
  broker.stderr?.on('data', (d: Buffer) => {
    logBytes += d.length
    stderrTail = (stderrTail + d.toString()).slice(-6000)
  })
  broker.once('exit', (code, signal) => {
    if (stopping) return
    brokerExit = `exited with ${signal ?? `code ${code}`}`
    console.log(`\nthe broker ${brokerExit} during '${name}'; its last log output:\n${stderrTail.slice(-3000)}`)
  })
  let fleet: Awaited<ReturnType<typeof connectFleet>> | null = null
  let db: Database.Database | null = null
  try {
    const ipc = ipcOf(broker)
    const listening = await ipc.next('listening', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stderrTail}`)
    })
    if (!listening.httpUrl) throw new Error('the broker reported no HTTP API')
    const pid = broker.pid as number
    const consumer = consumerOver(ipc)
    fleet = await connectFleet(fx.devices, { port: listening.port, concurrency: 20, deadlineMs: 60_000 })
    if (fleet.connected.length < DEVICES)
      throw new Error(`only ${fleet.connected.length}/${DEVICES} devices connected: ${fleet.outcomes.find((o) => !o.ok)?.error}`)
    const database = dataDirLayout(fx.dataDir).database
    db = new Database(database, { readonly: true, fileMustExist: true })
    const auditRows = () => (db!.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n
    const dbBytes = () => fileBytes(database) + fileBytes(`${database}-wal`)

    // unmeasured warm-up: until V8 has optimised the hot paths a message costs several times more
    await consumer.expect(RATE * WARMUP_SECONDS)
    const warm = await pacedLoad(fleet.connected, RATE * WARMUP_SECONDS, RATE, {
      qos: 1,
      size: PAYLOAD_BYTES,
      timeoutMs: WARMUP_SECONDS * 1000,
    })
    if (warm.sent < RATE * WARMUP_SECONDS) consumer.lower(warm.sent)
    await consumer.reached(DRAIN_MS)

    const total = RATE * SECONDS
    const attacker = attacks.length ? await startAttacker() : null
    await consumer.expect(total)
    const audit0 = auditRows()
    const db0 = dbBytes()
    const log0 = logBytes
    const s0 = sampleProcess(pid)
    const rss = rssSampler(pid)
    const t0 = performance.now()
    const attacking = attacker ? attacker.go(attackPlan(attacks, listening.port, listening.httpUrl, fx)) : Promise.resolve(null)
    const load = await pacedLoad(fleet.connected, total, RATE, { qos: 1, size: PAYLOAD_BYTES, timeoutMs: SECONDS * 1000 })
    if (load.sent < total) consumer.lower(load.sent)
    if (!brokerExit) await consumer.reached(DRAIN_MS)
    const attackReport = await attacking
    const seconds = (performance.now() - t0) / 1000
    const samples = rss.stop()
    const s1 = sampleOrLast(pid, samples, s0)
    const report = brokerExit ? deadReport : await consumer.report()
    const delivered = Math.min(report.received, load.sent)
    return {
      phase: name,
      seconds: round(seconds, 1),
      published: load.sent,
      publishFailed: load.failed,
      delivered,
      lost: load.sent - delivered,
      p50Ms: round(report.latencyP50Ms, 2),
      p99Ms: round(report.latencyP99Ms, 2),
      maxMs: round(report.latencyMaxMs, 1),
      rssStartMiB: round(s0.rssBytes / MiB, 1),
      rssMaxMiB: round(Math.max(...samples.map((x) => x.rssBytes), s1.rssBytes) / MiB, 1),
      rssEndMiB: round(s1.rssBytes / MiB, 1),
      brokerCpuCores: round((s1.cpuMs - s0.cpuMs) / 1000 / seconds, 2),
      auditRowsAdded: auditRows() - audit0,
      databaseBytesAdded: dbBytes() - db0,
      logBytesAdded: logBytes - log0,
      attack: attackReport,
      brokerExit,
    }
  } finally {
    db?.close()
    await fleet?.close()
    stopping = true
    await stopChild(broker)
  }
}

function attackPlan(attacks: Attack[], port: number, httpUrl: string, fx: Fixture): AttackPlan {
  return {
    attacks,
    port,
    httpUrl,
    seconds: SECONDS,
    flooder: fx.flooder,
    subscribeRounds: ROUNDS,
    revoked: fx.revoked,
    refusedConnects: CONNECTS,
    refusedConcurrency: 4,
    clientIdBytes: 60_000,
    token: fx.token,
    group: GROUP,
    victimDeviceId: fx.victimDeviceId,
    schemaPuts: PUTS,
    schemaBytes: 47_000,
    redosPatches: PATCHES,
    redosLength: REDOS_LEN,
  }
}

interface Fixture {
  dataDir: string
  devices: DeviceBundle[]
  flooder: DeviceBundle
  revoked: DeviceBundle
  victimDeviceId: string
  token: string
  settingsBytes: number
}

/** A fresh data dir: the fleet, the flooder (with ~50 KB of settings), a revoked device, a device of the attacked group, an app key. */
async function provision(dataDir: string): Promise<Fixture> {
  const log = pino({ level: 'silent' })
  await initControlPlane(dataDir, {}, { log }, 'bench')
  const control = await openControlPlane(dataDir, {}, { log, clock: systemClock, random: cryptoRandom })
  try {
    const bundles = async (prefix: string, count: number, group?: string) => {
      const batch = await control.authority.prepareBatch({ count, prefix, ...(group && { group }) }, 'bench')
      await batch.commit()
      return batch.issued.map((i) => ({ deviceId: i.deviceId, cert: i.certificatePem, key: i.privateKey!.pem, ca: i.chainPem }))
    }
    const devices = await bundles('fleet-', DEVICES)
    const [flooder] = await bundles('flooder-', 1)
    const [revoked] = await bundles('revoked-', 1)
    const [victim] = await bundles('victim-', 1, GROUP)
    await control.authority.revokeDevice(revoked!.deviceId, 'keyCompromise', 'bench')
    // ~50 KB of settings: what every SUBSCRIBE to the flooder's settings topic reads, decrypts and sends
    const blob: Record<string, string> = {}
    for (let i = 0; i < 50; i++) blob[`k${i}`] = 'v'.repeat(1000)
    await control.settings.patchDevice(flooder!.deviceId, { blob }, { actor: 'bench' })
    const { token } = await control.apiKeys.create({ name: 'attacker', scopes: ['settings:write'] }, 'bench')
    // every device comes from 127.0.0.1: raise the per-address limits only (another branch raises the defaults)
    writeFileSync(
      dataDirLayout(dataDir).config,
      JSON.stringify({ limits: { maxConnectionsPerIp: 50_000, connectionRatePerIp: { ratePerSecond: 100_000, burst: 100_000 } } }),
    )
    console.log(`provisioned ${DEVICES} devices, a flooder, a revoked device, a device of group '${GROUP}' and an app key`)
    return {
      dataDir,
      devices,
      flooder: flooder!,
      revoked: revoked!,
      victimDeviceId: victim!.deviceId,
      token,
      settingsBytes: JSON.stringify({ blob }).length,
    }
  } finally {
    await control.close()
  }
}

function spawnChild(script: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, script), ...args], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'advanced',
  })
  // a child that exits by itself (the attacker, after its report) may close the IPC channel under a send
  child.on('error', () => {})
  return child
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  if (child.connected) child.send({ type: 'close' } satisfies ParentMessage)
  else child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
  await exited
  clearTimeout(timer)
}

/** Starts the attacker process and waits until it is ready; go() runs the plan and resolves with its report. */
async function startAttacker(): Promise<{ go(plan: AttackPlan): Promise<AttackReport> }> {
  const child = spawnChild('abuse-attacker.ts', [])
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[attacker] ${d}`))
  const messages: { ready?: boolean; report?: AttackReport; error?: string }[] = []
  let wake: (() => void) | null = null
  child.on('message', (m: { ready?: boolean; report?: AttackReport; error?: string }) => (messages.push(m), wake?.()))
  child.once('exit', (code) => (messages.push({ error: `attacker exited ${code}` }), wake?.()))
  const next = async (timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs
    while (!messages.length && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, 100)
      })
    }
    return messages.shift() ?? { error: `no answer from the attacker within ${timeoutMs} ms` }
  }
  const ready = await next(30_000)
  if (!ready.ready) {
    await stopChild(child)
    throw new Error(`attacker did not start: ${ready.error}`)
  }
  return {
    async go(plan) {
      child.send(plan)
      const result = await next((plan.seconds + 40) * 1000)
      await stopChild(child)
      if (!result.report) throw new Error(`attacker failed: ${result.error}`)
      return result.report
    },
  }
}

function rssSampler(pid: number): { stop(): ProcSample[] } {
  const samples: ProcSample[] = []
  const timer = setInterval(() => {
    try {
      samples.push(sampleProcess(pid))
    } catch {
      clearInterval(timer) // the broker is gone
    }
  }, RSS_SAMPLE_MS)
  return {
    stop() {
      clearInterval(timer)
      return samples
    },
  }
}

/** The broker's figures now, or (when it died) its last sample. */
function sampleOrLast(pid: number, samples: ProcSample[], first: ProcSample): ProcSample {
  try {
    return sampleProcess(pid)
  } catch {
    return samples.at(-1) ?? first
  }
}

const deadReport = { received: 0, stray: 0, firstArrivalNs: 0n, lastArrivalNs: 0n, latencyP50Ms: NaN, latencyP99Ms: NaN, latencyMaxMs: NaN }

const MEDIAN_KEYS = [
  'seconds',
  'published',
  'publishFailed',
  'delivered',
  'lost',
  'p50Ms',
  'p99Ms',
  'maxMs',
  'rssStartMiB',
  'rssMaxMiB',
  'rssEndMiB',
  'brokerCpuCores',
  'auditRowsAdded',
  'databaseBytesAdded',
  'logBytesAdded',
] as const

/** One phase's repetitions as one: the median of each figure; the last repetition's attack report; any broker death. */
function medianPhase(reps: PhaseResult[]): PhaseResult {
  const last = reps.at(-1) as PhaseResult
  if (reps.length === 1) return last
  const medians = Object.fromEntries(MEDIAN_KEYS.map((k) => [k, median(reps.map((r) => r[k]))]))
  return { ...last, ...medians, brokerExit: reps.find((r) => r.brokerExit)?.brokerExit ?? null }
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

type MachineLoad = ReturnType<typeof machineLoad>

function summarize(
  phases: PhaseResult[],
  settingsBytes: number,
  machine: { before: MachineLoad; after: MachineLoad },
): Record<string, unknown> {
  const baseline = phases[0] as PhaseResult
  const aims = phases.slice(1).map((p) => {
    const p99Ratio = p.p99Ms / baseline.p99Ms
    const rssDeltaMiB = p.rssMaxMiB - baseline.rssMaxMiB
    return {
      phase: p.phase,
      p99Ratio: round(p99Ratio, 2),
      p99Met: p99Ratio <= 2,
      rssDeltaMiB: round(rssDeltaMiB, 1),
      rssMet: rssDeltaMiB <= 50,
      brokerSurvived: !p.brokerExit,
    }
  })
  const row = (label: string, key: keyof PhaseResult, digits = 0): (string | number)[] => [
    label,
    ...phases.map((p) => fmt(p[key] as number, digits)),
  ]
  console.log()
  printTable([
    [
      `abuse: ${DEVICES} devices, ${RATE} msg/s, ${SECONDS} s per phase${REPS > 1 ? `, median of ${REPS}` : ''}`,
      ...phases.map((p) => p.phase),
    ],
    row('published', 'published'),
    row('lost (not delivered within 10 s)', 'lost'),
    row('publish failed (no PUBACK)', 'publishFailed'),
    row('publish -> deliver p50 (ms)', 'p50Ms', 2),
    row('publish -> deliver p99 (ms)', 'p99Ms', 2),
    row('publish -> deliver max (ms)', 'maxMs', 1),
    ['p99 / baseline p99 (aim <= 2)', '', ...aims.map((a) => `${fmt(a.p99Ratio, 2)} ${a.p99Met ? 'met' : 'MISSED'}`)],
    row('broker RSS at start (MiB)', 'rssStartMiB', 1),
    row('broker RSS max (MiB)', 'rssMaxMiB', 1),
    row('broker RSS at end (MiB)', 'rssEndMiB', 1),
    [
      'RSS max - baseline max (aim <= 50 MiB)',
      '',
      ...aims.map((a) => `${a.rssDeltaMiB >= 0 ? '+' : ''}${fmt(a.rssDeltaMiB, 1)} ${a.rssMet ? 'met' : 'MISSED'}`),
    ],
    row('broker CPU (cores)', 'brokerCpuCores', 2),
    row('audit rows added', 'auditRowsAdded'),
    row('database bytes added', 'databaseBytesAdded'),
    row('log bytes added', 'logBytesAdded'),
    ['broker survived', ...phases.map((p) => (p.brokerExit ? `NO: ${p.brokerExit}` : 'yes'))],
  ])
  console.log()
  const rows: string[][] = [['phase', 'attack', `what it did${REPS > 1 ? ' (last repetition)' : ''}`]]
  for (const p of phases.slice(1)) {
    const a = p.attack
    if (!a) continue
    if (a.subscribeFlood) {
      const f = a.subscribeFlood
      rows.push([
        p.phase,
        'subscribe flood',
        `${f.rounds} SUBSCRIBE+UNSUBSCRIBE+PINGREQ rounds, ${f.subacks} SUBACKs, ${f.settingsMessages} settings documents back (${fmt(f.settingsBytes / MiB, 1)} MiB; document ${settingsBytes} B)${f.closedByBroker ? ', closed by the broker' : ''}${f.error ? `, error: ${f.error}` : ''}`,
      ])
    }
    if (a.refusedConnectFlood) {
      const r = a.refusedConnectFlood
      rows.push([
        p.phase,
        'refused connects',
        `${r.attempts} CONNECTs with a 60 KB clientId; CONNACK codes ${JSON.stringify(r.connacks)}, closed without CONNACK ${r.closedWithoutConnack}, errors ${r.errors}`,
      ])
    }
    if (a.schemaAttack) {
      const c = a.schemaAttack
      rows.push([
        p.phase,
        'schema attack',
        `${c.puts} schema PUTs (~47 KB and ~2 KB), ${c.patches} PATCHes ('a' x ${REDOS_LEN} + 'b'); statuses ${JSON.stringify(c.statuses)}, codes ${JSON.stringify(c.codes)}, slowest request ${fmt(c.maxRequestMs, 0)} ms`,
      ])
    }
    rows.push([p.phase, 'attacker CPU', `${fmt(a.attackerCpuMs / 1000, 1)} s`])
  }
  printTable(rows)
  const { before, after } = machine
  console.log(
    `machine load (1-min load average, CPU pressure avg60 %): before ${fmt(before.loadAverage1m, 2)}, ${fmt(before.cpuPressureSome60s, 0)}; ` +
      `after ${fmt(after.loadAverage1m, 2)}, ${fmt(after.cpuPressureSome60s, 0)} (other work on these cores inflates every latency, the baseline's too)`,
  )
  return {
    devices: DEVICES,
    ratePerSecond: RATE,
    secondsPerPhase: SECONDS,
    payloadBytes: PAYLOAD_BYTES,
    quick,
    aiBridge: AI_OFF ? 'off' : 'on',
    consumer: CONSUMER,
    caps: { subscribeRounds: ROUNDS, refusedConnects: CONNECTS, schemaPuts: PUTS, redosPatches: PATCHES, redosLength: REDOS_LEN },
    flooderSettingsBytes: settingsBytes,
    phases,
    aims,
    machineLoad: machine,
  }
}

const round = (n: number, digits: number) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n)
