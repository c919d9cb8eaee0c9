import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { cryptoRandom, systemClock } from '../certs/index.ts'
import { connectFleet, type DeviceBundle } from '../device-sim/index.ts'
import { dataDirLayout, initControlPlane, openControlPlane, type ControlPlane } from '../provisioning/index.ts'
import { startBroker } from './brokers/launch.ts'
import { machineLoad, sampleProcess } from './proc-stats.ts'
import { publishLoad } from './publish-load.ts'
import { alternate, envInt, fmt, median, printTable } from './table.ts'

const REPS = envInt('BENCH_APPS_REPS', 3)
/** timed messages per case (all publishers together) */
const MESSAGES = envInt('BENCH_APPS_MESSAGES', 20_000)
const PUBLISHERS = envInt('BENCH_APPS_PUBLISHERS', 10)
const APPS = envInt('BENCH_APPS_SUBSCRIBERS', 5)
const WARMUP = Math.min(5000, Math.max(PUBLISHERS, Math.floor(MESSAGES / 5)))
/** the load stops starting publishes after this; whatever has not reached every consumer DRAIN_MS later counts as lost */
const MAX_WINDOW_MS = envInt('BENCH_APPS_MAX_WINDOW_SECONDS', 30) * 1000
const DRAIN_MS = 15_000
const GROUP = 'pumps'

const CASES = ['none', 'route', 'apps', 'both'] as const
type Case = (typeof CASES)[number]
const LABELS: Record<Case, string> = {
  none: 'nothing',
  route: 'one route (group pumps)',
  apps: `${APPS} app subscribers (group pumps)`,
  both: `one route + ${APPS} app subscribers`,
}

/** A receiver in its own process (so its CPU is nobody's here) that answers 204 and prints the running count of messages. */
async function startReceiver(): Promise<{ url: string; received(): number; stop(): void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `let n=0;const s=require('node:http').createServer((q,r)=>{const b=[];q.on('data',(c)=>b.push(c));` +
        `q.on('end',()=>{try{n+=JSON.parse(Buffer.concat(b)).messages.length}catch{};r.writeHead(204).end();console.log(n)})});` +
        `s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let count = 0
  let buffered = ''
  const port = await new Promise<string>((resolve) =>
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        if (line.startsWith('port ')) resolve(line.slice(5))
        else if (line !== '') count = Number(line)
      }
    }),
  )
  return { url: `http://127.0.0.1:${port}/in`, received: () => count, stop: () => child.kill() }
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 20))
  }
  return true
}

interface Fixture {
  dataDir: string
  control: ControlPlane
  devices: DeviceBundle[]
  apps: DeviceBundle[]
}

/** A data dir with PUBLISHERS devices of group pumps and APPS apps (group pumps, telemetry), all issued by the real services. */
async function provision(dir: string): Promise<Fixture> {
  const dataDir = join(dir, 'data')
  const log = pino({ level: 'silent' })
  await initControlPlane(dataDir, {}, { log }, 'bench')
  const control = await openControlPlane(
    dataDir,
    { routes: { maxRoutes: 16, allowPrivateTargets: true } },
    { log, clock: systemClock, random: cryptoRandom },
  )
  const batch = await control.authority.prepareBatch({ count: PUBLISHERS, prefix: 'pump-', group: GROUP }, 'bench')
  await batch.commit()
  const devices = batch.issued.map((i) => ({ deviceId: i.deviceId, cert: i.certificatePem, key: i.privateKey?.pem ?? '', ca: i.chainPem }))
  const apps: DeviceBundle[] = []
  for (let i = 1; i <= APPS; i++) {
    const prepared = await control.apps.prepareCreate({ name: `bench-${i}`, groups: [GROUP], classes: ['telemetry'] }, 'bench')
    const issued = await prepared.commit()
    apps.push({ deviceId: `app:bench-${i}`, cert: issued.certificatePem, key: issued.privateKeyPem ?? '', ca: issued.chainPem })
  }
  return { dataDir, control, devices, apps }
}

interface AppsRun {
  case: Case
  rep: number
  messages: number
  cpuUsPerMessage: number
  /** messages that did not reach every app subscriber (and the route) within DRAIN_MS */
  lost: number
}

/** One case on a fresh broker process (a copy of the data dir, with the route in it when the case has one). */
async function runCase(fx: Fixture, c: Case, rep: number, receiver: { url: string; received(): number }): Promise<AppsRun> {
  const withRoute = c === 'route' || c === 'both'
  const withApps = c === 'apps' || c === 'both'
  const route = withRoute
    ? await fx.control.routes.create({ url: receiver.url, group: GROUP, batchSize: 100, batchMs: 100, queueMax: 100_000 }, 'bench')
    : null
  const broker = await startBroker('gatehouse-ai-off', { dataDir: fx.dataDir, ...tlsFiles(fx.dataDir) })
  // The broker runs on its own copy of the data dir, made at its start (brokers/launch.ts): this deletion,
  // in the original, never reaches it through the change feed (another database), so the route keeps
  // delivering in this case and the next case's copy has none. Not a bug in route deletion: a deletion in
  // the broker's own registry stops the route (test/integration/routes/telemetry-routes.test.ts).
  if (route) await fx.control.routes.delete(route.id, 'bench')
  const fleet = await connectFleet(fx.devices, { port: broker.port, concurrency: 10, deadlineMs: 60_000 })
  const readers = withApps ? await connectFleet(fx.apps, { port: broker.port, concurrency: 10, deadlineMs: 60_000 }) : null
  try {
    if (fleet.connected.length < fx.devices.length) throw new Error(`only ${fleet.connected.length}/${fx.devices.length} devices connected`)
    if (readers && readers.connected.length < fx.apps.length)
      throw new Error(`only ${readers.connected.length}/${fx.apps.length} apps connected`)
    const counts = (readers?.connected ?? []).map(() => 0)
    await Promise.all(
      (readers?.connected ?? []).map(async ({ client }: { client: MqttClient }, i) => {
        client.on('message', () => void counts[i]!++)
        await client.subscribeAsync('devices/+/telemetry', { qos: 0 })
      }),
    )
    const routeBase = receiver.received()
    const everywhere = (n: number) => counts.every((x) => x >= n) && (!withRoute || receiver.received() - routeBase >= n)
    const options = { qos: 1 as const, size: 128, window: 10, timeoutMs: MAX_WINDOW_MS }
    // warm-up, not measured; then wait until every consumer has it, so that none of it is in the timed window
    await publishLoad(fleet.connected, WARMUP, options)
    await until(() => everywhere(WARMUP), DRAIN_MS)
    const cpu0 = sampleProcess(broker.pid).cpuMs
    const load = await publishLoad(fleet.connected, MESSAGES, options)
    const drained = await until(() => everywhere(WARMUP + load.completed), DRAIN_MS)
    const cpuMs = sampleProcess(broker.pid).cpuMs - cpu0
    const reached = Math.min(WARMUP + load.completed, ...counts, withRoute ? receiver.received() - routeBase : Number.POSITIVE_INFINITY)
    return {
      case: c,
      rep,
      messages: load.completed,
      cpuUsPerMessage: (cpuMs * 1000) / Math.max(1, load.completed),
      lost: drained ? 0 : WARMUP + load.completed - reached,
    }
  } finally {
    for (const { client } of [...fleet.connected, ...(readers?.connected ?? [])]) client.end(true)
    await broker.stop()
  }
}

function tlsFiles(dataDir: string) {
  const layout = dataDirLayout(dataDir)
  return { caFile: layout.chain, certFile: layout.serverCert, keyFile: layout.serverKey }
}

/**
 * Routes and app subscriptions on, against the same run without them (issue 15): PUBLISHERS devices of
 * group pumps publish QoS 1 telemetry (closed loop, 10 in flight each) to a Gatehouse broker in its own
 * process (AI bridge off, so only what is measured differs), in four cases: nothing else; one route of
 * group pumps (batches of 100, signed, POSTed to a receiver in another process); APPS app subscribers
 * (real mqtt.js clients with app certificates from the app service, each subscribed to
 * devices/+/telemetry, filtered per message by group); both. The figure is the broker process's CPU
 * (utime + stime, /proc) per published message, from the first timed publish until every consumer has
 * every message (bounded by DRAIN_MS), and its ratio to the case with nothing. A fresh broker per case;
 * cases alternate their order per repetition; medians of REPS.
 */
export async function appsBenchmark(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-apps-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  // the receiver is on loopback: the broker processes (children) inherit this
  process.env.GATEHOUSE_ROUTES_ALLOW_PRIVATE_TARGETS = 'true'
  const fx = await provision(dir)
  const receiver = await startReceiver()
  console.log(
    `apps: ${PUBLISHERS} publishers x 10 in flight, QoS 1, ${MESSAGES} timed messages per case after ${WARMUP} warm-up, ${APPS} apps, ${REPS} repetitions`,
  )
  const loadBefore = machineLoad()
  const runs: AppsRun[] = []
  try {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const c of alternate(CASES, rep)) {
        const run = await runCase(fx, c, rep, receiver)
        runs.push(run)
        console.log(
          `  rep ${rep} ${LABELS[c].padEnd(36)} ${fmt(run.cpuUsPerMessage, 1)} us/msg${run.lost ? `, ${run.lost} not delivered` : ''}`,
        )
      }
    }
  } finally {
    receiver.stop()
    await fx.control.close()
  }
  const loadAfter = machineLoad()
  const cpu = Object.fromEntries(CASES.map((c) => [c, median(runs.filter((r) => r.case === c).map((r) => r.cpuUsPerMessage))])) as Record<
    Case,
    number
  >
  printTable([
    ['broker CPU per published message', 'microseconds', 'ratio to nothing'],
    ...CASES.map((c) => [LABELS[c], fmt(cpu[c], 1), fmt(cpu[c] / cpu.none, 2)]),
  ])
  console.log(
    `machine load (1-min load average, CPU pressure avg60 %): before ${fmt(loadBefore.loadAverage1m, 2)}, ${fmt(loadBefore.cpuPressureSome60s, 0)}; after ${fmt(loadAfter.loadAverage1m, 2)}, ${fmt(loadAfter.cpuPressureSome60s, 0)}`,
  )
  return {
    publishers: PUBLISHERS,
    apps: APPS,
    messages: MESSAGES,
    reps: REPS,
    cpuUsPerMessage: cpu,
    ratioToNothing: Object.fromEntries(CASES.map((c) => [c, cpu[c] / cpu.none])),
    runs,
    machineLoad: { before: loadBefore, after: loadAfter },
  }
}
