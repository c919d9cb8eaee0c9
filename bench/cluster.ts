import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { connectFleet } from '../device-sim/index.ts'
import { startBroker } from './brokers/launch.ts'
import { BENCH_LIMITS } from './brokers/bench-limits.ts'
import { stampedPayload } from './brokers/ipc.ts'
import { benchFixture, type BenchFixture } from './fixture.ts'
import { machineLoad, sampleProcess } from './proc-stats.ts'
import { publishLoad } from './publish-load.ts'
import { rawConnectFleet, rawPublishLoad } from './raw-load.ts'
import { settle } from './settle.ts'
import { envInt, fmt, median, printTable } from './table.ts'

/**
 * `npm run bench -- cluster` (issue 13): a connect storm and QoS 1 publish throughput against plain aedes,
 * Gatehouse in one process (Mode 1, no Redis) and `gatehouse start --cluster --workers 1` and `--workers 2`
 * on a Redis the bench starts in a temp dir on a loopback port. The aim: 2 workers >= 1.6x the
 * connections/s and messages/s of 1 worker on this box.
 *
 * On 2 cores the load generator (this process) competes with the brokers for the cores a second worker
 * needs, so every phase reports the CPU of each process apart: the Gatehouse processes (primary and workers),
 * Redis, the generator, and what the rest of the machine used (/proc/stat), with units per CPU-second of the
 * broker processes and Redis alone. BENCH_GENERATOR=raw (the default) writes packets encoded once over raw
 * TLS sockets (raw-load.ts); BENCH_GENERATOR=mqtt uses mqtt.js as the other benchmarks do. The same
 * generator serves every broker of the run. With a cluster's Redis, `INFO commandstats` before and after
 * each phase gives the Redis commands per connection and per message.
 * Bounded: BENCH_DEVICES devices, BENCH_MESSAGES messages, BENCH_REPS repetitions, each step with a deadline.
 */
const DEVICES = envInt('BENCH_DEVICES', 500)
const MESSAGES = envInt('BENCH_MESSAGES', 20_000)
const REPS = envInt('BENCH_REPS', 1)
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 50)
const GENERATOR = process.env.BENCH_GENERATOR || 'raw'
/** publishing clients (of the connected devices), QoS 1 publishes in flight per client, payload bytes */
const PUBLISHERS = 50
const WINDOW = 10
const SIZE = 200
const AIM = 1.6
const REDIS_SERVER = '/usr/bin/redis-server'
const GATEHOUSE_BIN = join(import.meta.dirname, '..', 'bin', 'gatehouse.js')

/**
 * BENCH_BASELINE: another checkout of Gatehouse (a directory with bin/gatehouse.js and node_modules, e.g.
 * `git archive <commit> | tar -x -C /tmp/before` plus a node_modules symlink): its --workers 1 and 2 run as
 * two more cases of the same run, for a change's before and after under the same load.
 */
const BASELINE = process.env.BENCH_BASELINE || undefined

type Kind = 'aedes' | 'gatehouse' | 'cluster-1' | 'cluster-2' | 'baseline-1' | 'baseline-2'
const LABELS: Record<Kind, string> = {
  aedes: 'plain aedes',
  gatehouse: 'Gatehouse, one process (Mode 1)',
  'cluster-1': 'Gatehouse --cluster --workers 1',
  'cluster-2': 'Gatehouse --cluster --workers 2',
  'baseline-1': 'BENCH_BASELINE --workers 1',
  'baseline-2': 'BENCH_BASELINE --workers 2',
}

/** One process of a case, named for the report: 'broker', 'primary', 'worker 1', 'redis' */
interface CaseProcess {
  name: string
  pid: number
  redis?: boolean
}

interface Running {
  port: number
  /** the processes whose CPU is the case's: the broker (primary and workers), and Redis */
  processes(): CaseProcess[]
  /** the cluster's Redis URL, for INFO commandstats */
  redisUrl?: string
  stop(): Promise<void>
}

/** What one phase (the connect storm, or the publish load) cost. */
interface Phase {
  units: number
  seconds: number
  perSecond: number
  /** CPU ms of each process of the case in the phase, by name */
  cpuMs: Record<string, number>
  /** the broker processes (primary and workers) and Redis */
  caseCpuMs: number
  redisCpuMs: number
  generatorCpuMs: number
  /** CPU ms the whole machine spent (all cores, all users) in the phase, from /proc/stat */
  machineCpuMs: number
  /** Redis commands in the phase, by command (cluster cases) */
  redisCalls: Record<string, number>
}

interface ClusterRun {
  kind: Kind
  rep: number
  connect: Phase
  publish: Phase
}

export async function clusterBenchmark(): Promise<Record<string, unknown>> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (apt-get install redis-server)`)
  if (GENERATOR !== 'raw' && GENERATOR !== 'mqtt') throw new Error(`BENCH_GENERATOR must be raw or mqtt, not '${GENERATOR}'`)
  const fixture = await benchFixture(DEVICES)
  const kinds = casesToRun()
  const cores = cpus().length
  console.log(
    `cluster: connect storm of ${DEVICES} devices (${CONCURRENCY} in flight), then ${MESSAGES} QoS 1 publishes of ${SIZE} bytes ` +
      `from ${PUBLISHERS} of them (${WINDOW} in flight each, no subscriber), ${REPS} repetition(s), ${cores} cores, generator ${GENERATOR}`,
  )
  const loadBefore = machineLoad()
  const runs: ClusterRun[] = []
  for (let rep = 1; rep <= REPS; rep++) {
    for (const kind of rep % 2 ? kinds : [...kinds].reverse()) {
      const run = await clusterCase(kind, rep, fixture)
      runs.push(run)
      console.log(
        `  rep ${rep} ${LABELS[kind].padEnd(32)} ${phaseLine(run.connect, 'conn', 'ms', 1)}; ${phaseLine(run.publish, 'msg', 'us', 1000)}`,
      )
    }
  }
  const loadAfter = machineLoad()
  const med = (k: Kind, f: (r: ClusterRun) => number) => median(runs.filter((r) => r.kind === k).map(f))
  const table = (phase: 'connect' | 'publish', unit: string, per: string, scale: number) => {
    const cpuPer = (p: Phase, ms: number) => (ms * scale) / p.units
    printTable([
      [
        `${phase}: case`,
        `${unit}/s`,
        `Gatehouse ${per}/${unit}`,
        `Redis ${per}/${unit}`,
        `${unit}/CPU-s`,
        `generator ${per}/${unit}`,
        'cores busy: case, generator, others',
      ],
      ...kinds.map((k) => [
        LABELS[k],
        fmt(med(k, (r) => r[phase].perSecond)),
        fmt(
          med(k, (r) => cpuPer(r[phase], r[phase].caseCpuMs - r[phase].redisCpuMs)),
          2,
        ),
        fmt(
          med(k, (r) => cpuPer(r[phase], r[phase].redisCpuMs)),
          2,
        ),
        fmt(med(k, (r) => (r[phase].units * 1000) / r[phase].caseCpuMs)),
        fmt(
          med(k, (r) => cpuPer(r[phase], r[phase].generatorCpuMs)),
          2,
        ),
        coresLine(runs.filter((r) => r.kind === k).map((r) => r[phase])),
      ]),
    ])
  }
  table('connect', 'conn', 'CPU ms', 1)
  table('publish', 'msg', 'CPU us', 1000)
  for (const phase of ['connect', 'publish'] as const) {
    for (const k of kinds.filter((k) => k.startsWith('cluster') || k.startsWith('baseline'))) {
      const last = runs.filter((r) => r.kind === k).at(-1)
      if (last) console.log(`Redis commands per ${phase === 'connect' ? 'connection' : 'message'}, ${LABELS[k]}: ${callsLine(last[phase])}`)
    }
  }
  const compared = kinds.includes('cluster-1') && kinds.includes('cluster-2')
  const aim = (compared ? (['connect', 'publish'] as const) : []).map((phase) => {
    const ratio = med('cluster-2', (r) => r[phase].perSecond) / med('cluster-1', (r) => r[phase].perSecond)
    const cpuRatio =
      med('cluster-2', (r) => r[phase].caseCpuMs / r[phase].units) / med('cluster-1', (r) => r[phase].caseCpuMs / r[phase].units)
    const perCpuRatio = 1 / cpuRatio
    return { phase, ratio, cpuRatio, perCpuRatio, pass: ratio >= AIM }
  })
  for (const a of aim) {
    const name = a.phase === 'connect' ? 'connections/s' : 'messages/s'
    console.log(
      `aim (issue 13): 2 workers >= ${AIM}x 1 worker, ${name}: ${fmt(a.ratio, 2)}x ${a.pass ? 'PASS' : 'MISS'}` +
        ` (per CPU-second of the case ${fmt(a.perCpuRatio, 2)}x)`,
    )
    if (!a.pass) console.log(`  what limits it: ${limitOf(runs, a.phase, cores, a.cpuRatio)}`)
  }
  for (const w of BASELINE ? ([1, 2] as const) : []) {
    const now = `cluster-${w}` as Kind
    const base = `baseline-${w}` as Kind
    if (!kinds.includes(now) || !kinds.includes(base)) continue
    const ratio = (f: (r: ClusterRun) => number) => fmt(med(now, f) / med(base, f), 2)
    console.log(
      `this checkout / BENCH_BASELINE, --workers ${w}: conn/s ${ratio((r) => r.connect.perSecond)}x, case CPU per connection ` +
        `${ratio((r) => r.connect.caseCpuMs / r.connect.units)}x; msg/s ${ratio((r) => r.publish.perSecond)}x, case CPU per message ` +
        `${ratio((r) => r.publish.caseCpuMs / r.publish.units)}x`,
    )
  }
  console.log(
    `machine load (1-min load average, CPU pressure avg60 %): before ${fmt(loadBefore.loadAverage1m, 2)}, ${fmt(loadBefore.cpuPressureSome60s, 0)}; ` +
      `after ${fmt(loadAfter.loadAverage1m, 2)}, ${fmt(loadAfter.cpuPressureSome60s, 0)}`,
  )
  return {
    devices: DEVICES,
    messages: MESSAGES,
    reps: REPS,
    cpus: cores,
    generator: GENERATOR,
    aim: Object.fromEntries(aim.map((a) => [a.phase, a])),
    machineLoad: { before: loadBefore, after: loadAfter },
    runs,
  }
}

/** BENCH_CASES: a comma-separated subset (e.g. `cluster-1` to profile one case); default all (the baseline's two with BENCH_BASELINE) */
function casesToRun(): Kind[] {
  const all = (Object.keys(LABELS) as Kind[]).filter((k) => BASELINE || !k.startsWith('baseline'))
  const asked = (process.env.BENCH_CASES ?? '').split(',').filter(Boolean)
  const unknown = asked.filter((k) => !all.includes(k as Kind))
  if (unknown.length) throw new Error(`BENCH_CASES: unknown case(s) ${unknown.join(', ')}; the cases are ${all.join(', ')}`)
  return asked.length ? (asked as Kind[]) : all
}

function phaseLine(p: Phase, unit: string, per: string, scale: number): string {
  return (
    `${fmt(p.perSecond)} ${unit}/s (${p.units}), case CPU ${fmt((p.caseCpuMs * scale) / p.units, 2)} ${per}/${unit} ` +
    `[${Object.entries(p.cpuMs)
      .map(([n, ms]) => `${n} ${fmt((ms * scale) / p.units, 2)}`)
      .join(', ')}], generator ${fmt((p.generatorCpuMs * scale) / p.units, 2)}`
  )
}

/** cores busy on average during the phase: the case (brokers and Redis), the generator, everything else */
function coresLine(phases: Phase[]): string {
  const c = (f: (p: Phase) => number) => fmt(median(phases.map((p) => f(p) / 1000 / p.seconds)), 2)
  return `${c((p) => p.caseCpuMs)}, ${c((p) => p.generatorCpuMs)}, ${c((p) => Math.max(0, p.machineCpuMs - p.caseCpuMs - p.generatorCpuMs))}`
}

function callsLine(p: Phase): string {
  const top = Object.entries(p.redisCalls)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
  const total = top.reduce((s, [, n]) => s + n, 0)
  return `${fmt(total / p.units, 2)} (${top
    .slice(0, 8)
    .map(([cmd, n]) => `${cmd} ${fmt(n / p.units, 2)}`)
    .join(', ')})`
}

/**
 * Why 2 workers did not reach the aim in a phase, from what was measured: either the cores were full (then
 * the case's CPU per unit, with what the generator and the rest of the machine took, sets the ceiling), or
 * one process was the bottleneck at a full core while cores were left.
 */
function limitOf(runs: ClusterRun[], phase: 'connect' | 'publish', cores: number, cpuRatio: number): string {
  const two = runs.filter((r) => r.kind === 'cluster-2').at(-1)?.[phase]
  const one = runs.filter((r) => r.kind === 'cluster-1').at(-1)?.[phase]
  if (!two || !one) return 'no run'
  const busy = (ms: number, p: Phase) => ms / 1000 / p.seconds
  const machine = busy(two.machineCpuMs, two)
  const hottest = Object.entries(two.cpuMs).sort((a, b) => b[1] - a[1])[0] ?? ['-', 0]
  const hot = busy(hottest[1], two)
  const caseCores1 = busy(one.caseCpuMs, one)
  const cpuLine =
    `the case's CPU per unit is ${fmt(cpuRatio, 2)}x that of 1 worker; with 1 worker the case already kept ${fmt(caseCores1, 2)} cores busy ` +
    `(generator ${fmt(busy(one.generatorCpuMs, one), 2)}, others ${fmt(busy(Math.max(0, one.machineCpuMs - one.caseCpuMs - one.generatorCpuMs), one), 2)})`
  if (machine >= 0.9 * cores) {
    // /proc/stat and /proc/PID/stat tick at 10 ms: on a short phase the sum can pass the cores; never below 0
    const left = Math.max(
      0,
      cores - busy(two.generatorCpuMs, two) - busy(Math.max(0, two.machineCpuMs - two.caseCpuMs - two.generatorCpuMs), two),
    )
    const ceiling = (left / caseCores1) * (1 / cpuRatio)
    return (
      `the ${cores} cores were full (${fmt(machine, 2)} busy with 2 workers). ${cpuLine}: what the generator and others left ` +
      `(${fmt(left, 2)} cores) at 2 workers' CPU per unit allows at most ${fmt(ceiling, 2)}x`
    )
  }
  if (hot >= 0.85)
    return `one process was at a full core: ${hottest[0]} (${fmt(hot, 2)} cores) with ${fmt(cores - machine, 2)} cores idle; ${cpuLine}`
  return `neither the cores (${fmt(machine, 2)} of ${cores} busy) nor one process (at most ${hottest[0]}, ${fmt(hot, 2)}) was full: waits (Redis round trips, the primary's hand-off); ${cpuLine}`
}

/** The machine's CPU time so far over all cores (ms), busy only (not idle or iowait): /proc/stat's first line. */
function machineCpuMs(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
  return ((user + nice + system + irq + softirq + steal) * 1000) / 100
}

async function redisCalls(redis: Redis | null): Promise<Record<string, number>> {
  if (!redis) return {}
  const info = (await redis.info('commandstats')) as string
  const calls: Record<string, number> = {}
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1] as string] = Number(m[2])
  return calls
}

/** Measures one phase: CPU of each process, of this process (the generator) and of the machine, Redis calls. */
async function measure(broker: Running, redis: Redis | null, work: () => Promise<number>): Promise<Phase> {
  const processes = broker.processes()
  const cpuOf = () => processes.map((p) => sampleProcess(p.pid).cpuMs)
  const calls0 = await redisCalls(redis)
  const c0 = cpuOf()
  const g0 = process.cpuUsage()
  const m0 = machineCpuMs()
  const t0 = performance.now()
  const units = await work()
  const seconds = (performance.now() - t0) / 1000
  const m1 = machineCpuMs()
  const g = process.cpuUsage(g0)
  const c1 = cpuOf()
  const calls1 = await redisCalls(redis)
  // the INFO before and after counts itself once
  const redisCallsDelta = Object.fromEntries(
    Object.entries(calls1).map(([cmd, n]) => [cmd, n - (calls0[cmd] ?? 0) - (cmd === 'info' ? 1 : 0)]),
  )
  const cpuMs = Object.fromEntries(processes.map((p, i) => [p.name, (c1[i] as number) - (c0[i] as number)]))
  const caseCpuMs = Object.values(cpuMs).reduce((s, v) => s + v, 0)
  const redisCpuMs = processes.reduce((s, p, i) => s + (p.redis ? (c1[i] as number) - (c0[i] as number) : 0), 0)
  return {
    units,
    seconds,
    perSecond: units / seconds,
    cpuMs,
    caseCpuMs,
    redisCpuMs,
    generatorCpuMs: (g.user + g.system) / 1000,
    machineCpuMs: m1 - m0,
    redisCalls: redisCallsDelta,
  }
}

async function clusterCase(kind: Kind, rep: number, fixture: BenchFixture): Promise<ClusterRun> {
  const broker = await start(kind, fixture)
  const redis = broker.redisUrl ? new Redis(broker.redisUrl, { lazyConnect: true }) : null
  try {
    await redis?.connect()
    await settle(1000)
    const devices = fixture.devices.slice(0, DEVICES)
    const storm = { port: broker.port, concurrency: CONCURRENCY, deadlineMs: 300_000, connectTimeoutMs: 30_000 }
    if (GENERATOR === 'raw') {
      let fleet: Awaited<ReturnType<typeof rawConnectFleet>> | undefined
      const connect = await measure(broker, redis, async () => {
        fleet = await rawConnectFleet(devices, storm)
        return fleet.connected.length
      })
      try {
        const publishers = (fleet?.connected ?? []).slice(0, PUBLISHERS)
        const publish = await measure(broker, redis, async () => {
          const r = await rawPublishLoad(publishers, MESSAGES, { size: SIZE, window: WINDOW, timeoutMs: 120_000, payload: stampedPayload })
          return r.completed
        })
        return { kind, rep, connect, publish }
      } finally {
        fleet?.close()
      }
    }
    let fleet: Awaited<ReturnType<typeof connectFleet>> | undefined
    const connect = await measure(broker, redis, async () => {
      fleet = await connectFleet(devices, storm)
      return fleet.connected.length
    })
    try {
      const publishers = (fleet?.connected ?? []).slice(0, PUBLISHERS)
      const publish = await measure(broker, redis, async () => {
        const r = await publishLoad(publishers, MESSAGES, { qos: 1, size: SIZE, window: WINDOW, timeoutMs: 120_000 })
        return r.completed
      })
      return { kind, rep, connect, publish }
    } finally {
      await fleet?.close()
    }
  } finally {
    redis?.disconnect()
    await broker.stop()
  }
}

async function start(kind: Kind, fixture: BenchFixture): Promise<Running> {
  if (kind === 'aedes' || kind === 'gatehouse') {
    // the AI bridge off as in the cluster cases: the broker's cost alone
    const b = await startBroker(kind === 'gatehouse' ? 'gatehouse-ai-off' : 'aedes', fixture)
    return { port: b.port, processes: () => [{ name: 'broker', pid: b.pid }], stop: () => b.stop() }
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-cluster-'))
  const dataDir = join(dir, 'data')
  cpSync(fixture.dataDir, dataDir, { recursive: true })
  // the load generator's devices all come from 127.0.0.1: the bench limits, as for the other Gatehouse cases
  writeFileSync(join(dataDir, 'gatehouse.json'), JSON.stringify({ aiEnabled: false, limits: BENCH_LIMITS }), { mode: 0o600 })
  const redis = await startRedis(dir)
  const workers = kind.endsWith('-1') ? 1 : 2
  const bin = kind.startsWith('baseline') ? join(BASELINE as string, 'bin', 'gatehouse.js') : GATEHOUSE_BIN
  // BENCH_NODE_ARGS (e.g. --cpu-prof): node:cluster's workers inherit the primary's flags
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      bin,
      'start',
      '--data-dir',
      dataDir,
      '--cluster',
      redis.url,
      '--workers',
      String(workers),
      '--mqtt-port',
      '0',
      '--http-port',
      '0',
    ],
    {
      // NODE_CLUSTER_SCHED_POLICY=none (workers accept themselves) is passed on, to measure the primary's hand-off
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_CLUSTER_SCHED_POLICY: process.env.NODE_CLUSTER_SCHED_POLICY },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  const stop = async () => {
    await stopChild(child, 'SIGTERM', 20_000)
    await stopChild(redis.child, 'SIGTERM', 5000)
    rmSync(dir, { recursive: true, force: true })
  }
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${LABELS[kind]} did not start within 120 s:\n${stderr}`)), 120_000)
    child.stderr?.on('data', () => {
      const m = /on 127\.0\.0\.1:(\d+)/.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${LABELS[kind]} exited ${code}:\n${stderr}`))
    })
  }).catch(async (err: unknown) => {
    await stop()
    throw err
  })
  // with --workers 1 the node is the process itself; with more, the primary's children
  const processes = (): CaseProcess[] => {
    const workers = childrenOf(child.pid as number)
    return [
      { name: workers.length ? 'primary' : 'node', pid: child.pid as number },
      ...workers.map((pid, i) => ({ name: `worker ${i + 1}`, pid })),
      { name: 'redis', pid: redis.child.pid as number, redis: true },
    ]
  }
  return { port, processes, redisUrl: redis.url, stop }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  await exited
  clearTimeout(timer)
}

async function startRedis(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  return { url: `redis://127.0.0.1:${port}`, child }
}
