import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectFleet } from '../device-sim/index.ts'
import { startBroker } from './brokers/launch.ts'
import { BENCH_LIMITS } from './brokers/bench-limits.ts'
import { benchFixture, type BenchFixture } from './fixture.ts'
import { machineLoad, sampleProcess } from './proc-stats.ts'
import { publishLoad } from './publish-load.ts'
import { settle } from './settle.ts'
import { envInt, fmt, median, printTable } from './table.ts'

/**
 * `npm run bench -- cluster` (issue 13): a connect storm and QoS 1 publish throughput against plain aedes,
 * Gatehouse in one process (Mode 1, no Redis) and `gatehouse start --cluster --workers 1` and `--workers 2`
 * on a Redis the bench starts in a temp dir on a loopback port. The aim: 2 workers >= 1.6x the
 * connections/s and messages/s of 1 worker on this box. The load generator (this process, mqtt.js) shares
 * the cores with the brokers and Redis: the broker CPU per connection and per message (every process of
 * the case: the primary and its workers, and Redis for the cluster cases) says what a figure cost.
 * Bounded: BENCH_DEVICES devices, BENCH_MESSAGES messages, BENCH_REPS repetitions, each step with a deadline.
 */
const DEVICES = envInt('BENCH_DEVICES', 500)
const MESSAGES = envInt('BENCH_MESSAGES', 20_000)
const REPS = envInt('BENCH_REPS', 1)
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 50)
/** publishing clients (of the connected devices), QoS 1 publishes in flight per client, payload bytes */
const PUBLISHERS = 50
const WINDOW = 10
const SIZE = 200
const REDIS_SERVER = '/usr/bin/redis-server'
const GATEHOUSE_BIN = join(import.meta.dirname, '..', 'bin', 'gatehouse.js')

type Kind = 'aedes' | 'gatehouse' | 'cluster-1' | 'cluster-2'
const LABELS: Record<Kind, string> = {
  aedes: 'plain aedes',
  gatehouse: 'Gatehouse, one process (Mode 1)',
  'cluster-1': 'Gatehouse --cluster --workers 1',
  'cluster-2': 'Gatehouse --cluster --workers 2',
}

interface Running {
  port: number
  /** the processes whose CPU is the case's: the broker (primary and workers), and Redis */
  pids(): number[]
  stop(): Promise<void>
}

interface ClusterRun {
  kind: Kind
  rep: number
  connected: number
  connectionsPerSecond: number
  cpuMsPerConnection: number
  messages: number
  messagesPerSecond: number
  cpuUsPerMessage: number
}

export async function clusterBenchmark(): Promise<Record<string, unknown>> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (apt-get install redis-server)`)
  const fixture = await benchFixture(DEVICES)
  const kinds: Kind[] = ['aedes', 'gatehouse', 'cluster-1', 'cluster-2']
  console.log(
    `cluster: connect storm of ${DEVICES} devices (${CONCURRENCY} in flight), then ${MESSAGES} QoS 1 publishes of ${SIZE} bytes ` +
      `from ${PUBLISHERS} of them (${WINDOW} in flight each, no subscriber), ${REPS} repetition(s), ${cpus().length} cores`,
  )
  const loadBefore = machineLoad()
  const runs: ClusterRun[] = []
  for (let rep = 1; rep <= REPS; rep++) {
    for (const kind of kinds) {
      const run = await clusterCase(kind, rep, fixture)
      runs.push(run)
      console.log(
        `  rep ${rep} ${LABELS[kind].padEnd(32)} ${fmt(run.connectionsPerSecond)} conn/s (${run.connected}/${DEVICES}), CPU ${fmt(run.cpuMsPerConnection, 2)} ms/conn; ` +
          `${fmt(run.messagesPerSecond)} msg/s, CPU ${fmt(run.cpuUsPerMessage, 1)} us/msg`,
      )
    }
  }
  const loadAfter = machineLoad()
  const med = (k: Kind, key: keyof ClusterRun) => median(runs.filter((r) => r.kind === k).map((r) => r[key] as number))
  printTable([
    ['case', 'conn/s', 'CPU ms/conn', 'msg/s', 'CPU us/msg'],
    ...kinds.map((k) => [
      LABELS[k],
      fmt(med(k, 'connectionsPerSecond')),
      fmt(med(k, 'cpuMsPerConnection'), 2),
      fmt(med(k, 'messagesPerSecond')),
      fmt(med(k, 'cpuUsPerMessage'), 1),
    ]),
  ])
  const connRatio = med('cluster-2', 'connectionsPerSecond') / med('cluster-1', 'connectionsPerSecond')
  const msgRatio = med('cluster-2', 'messagesPerSecond') / med('cluster-1', 'messagesPerSecond')
  const verdict = (r: number) => (r >= 1.6 ? 'PASS' : 'MISS')
  console.log(
    `aim (issue 13): 2 workers >= 1.6x 1 worker: connections/s ${fmt(connRatio, 2)}x ${verdict(connRatio)}, messages/s ${fmt(msgRatio, 2)}x ${verdict(msgRatio)}`,
  )
  const cpuConn = med('cluster-2', 'cpuMsPerConnection') / med('cluster-1', 'cpuMsPerConnection')
  const cpuMsg = med('cluster-2', 'cpuUsPerMessage') / med('cluster-1', 'cpuUsPerMessage')
  console.log(
    `what limits it: the case's CPU (broker processes and Redis) per connection is ${fmt(cpuConn, 2)}x and per message ` +
      `${fmt(cpuMsg, 2)}x that of 1 worker (every message crosses Redis pub/sub to every node); the load generator ` +
      '(this process: mqtt.js and TLS) shares the same cores, so 2 workers can only go faster where cores are left idle: ' +
      'compare the CPU columns, and the machine load below',
  )
  console.log(
    `machine load (1-min load average, CPU pressure avg60 %): before ${fmt(loadBefore.loadAverage1m, 2)}, ${fmt(loadBefore.cpuPressureSome60s, 0)}; ` +
      `after ${fmt(loadAfter.loadAverage1m, 2)}, ${fmt(loadAfter.cpuPressureSome60s, 0)}`,
  )
  return {
    devices: DEVICES,
    messages: MESSAGES,
    reps: REPS,
    cpus: cpus().length,
    aim: { connectionsRatio: connRatio, messagesRatio: msgRatio, met: connRatio >= 1.6 && msgRatio >= 1.6 },
    cpuRatios: { perConnection: cpuConn, perMessage: cpuMsg },
    machineLoad: { before: loadBefore, after: loadAfter },
    runs,
  }
}

async function clusterCase(kind: Kind, rep: number, fixture: BenchFixture): Promise<ClusterRun> {
  const broker = await start(kind, fixture)
  try {
    await settle(1000)
    const cpu = () => broker.pids().reduce((sum, pid) => sum + sampleProcess(pid).cpuMs, 0)
    const c0 = cpu()
    const fleet = await connectFleet(fixture.devices.slice(0, DEVICES), {
      port: broker.port,
      concurrency: CONCURRENCY,
      deadlineMs: 300_000,
      connectTimeoutMs: 30_000,
    })
    const c1 = cpu()
    try {
      const connected = fleet.connected.length
      const publishers = fleet.connected.slice(0, PUBLISHERS)
      const t0 = performance.now()
      const c2 = cpu()
      const published = await publishLoad(publishers, MESSAGES, { qos: 1, size: SIZE, window: WINDOW, timeoutMs: 120_000 })
      const seconds = (performance.now() - t0) / 1000
      const c3 = cpu()
      return {
        kind,
        rep,
        connected,
        connectionsPerSecond: connected / (fleet.elapsedMs / 1000),
        cpuMsPerConnection: (c1 - c0) / connected,
        messages: published.completed,
        messagesPerSecond: published.completed / seconds,
        cpuUsPerMessage: ((c3 - c2) * 1000) / published.completed,
      }
    } finally {
      await fleet.close()
    }
  } finally {
    await broker.stop()
  }
}

async function start(kind: Kind, fixture: BenchFixture): Promise<Running> {
  if (kind === 'aedes' || kind === 'gatehouse') {
    // the AI bridge off as in the cluster cases: the broker's cost alone
    const b = await startBroker(kind === 'gatehouse' ? 'gatehouse-ai-off' : 'aedes', fixture)
    return { port: b.port, pids: () => [b.pid], stop: () => b.stop() }
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-cluster-'))
  const dataDir = join(dir, 'data')
  cpSync(fixture.dataDir, dataDir, { recursive: true })
  // the load generator's devices all come from 127.0.0.1: the bench limits, as for the other Gatehouse cases
  writeFileSync(join(dataDir, 'gatehouse.json'), JSON.stringify({ aiEnabled: false, limits: BENCH_LIMITS }), { mode: 0o600 })
  const redis = await startRedis(dir)
  const workers = kind === 'cluster-1' ? 1 : 2
  const child = spawn(
    process.execPath,
    [
      GATEHOUSE_BIN,
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
    { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'ignore', 'pipe'] },
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
  const pids = () => [child.pid as number, ...childrenOf(child.pid as number), redis.child.pid as number]
  return { port, pids, stop }
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
