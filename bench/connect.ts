import { cpus } from 'node:os'
import { connectFleet } from '../device-sim/index.ts'
import { BROKER_LABELS, mosquittoPath, mosquittoVersion, probeConnects, startBroker, type BrokerKind } from './brokers/launch.ts'
import { benchFixture, type BenchFixture } from './fixture.ts'
import { machineLoad, sampleProcess } from './proc-stats.ts'
import { settle } from './settle.ts'
import { alternate, envInt, fmt, median, medianPairedRatio, percentile, printTable } from './table.ts'

const DEVICES = envInt('BENCH_DEVICES', 2000)
const REPS = envInt('BENCH_REPS', 3)
/** connects in flight at once during the storm */
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 50)
/** sequential connects on an idle broker from a fresh process, after UNLOADED_WARMUP unmeasured ones */
const UNLOADED = envInt('BENCH_UNLOADED_CONNECTS', 10)
const UNLOADED_WARMUP = 3
/** idle time after the broker starts and after the storm, with the bench process's garbage collected */
const SETTLE_MS = 1000

export interface ConnectRun {
  broker: BrokerKind
  rep: number
  devices: number
  connected: number
  failed: number
  /** first failure reasons, for the reader */
  failures: string[]
  connectionsPerSecond: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** broker utime+stime over the storm / connections */
  cpuMsPerConnection: number
  /** broker RSS after all connected minus before / connections */
  rssKiBPerConnection: number
  rssBeforeMiB: number
  rssAfterMiB: number
  /** sequential connects of one device on an otherwise idle broker (ms) */
  unloadedMs: number[]
  unloadedMedianMs: number
}

/**
 * A mutual-TLS connect storm: DEVICES devices, each with its own certificate and clientId = CN,
 * connected from 127.0.0.1 with at most CONCURRENCY connects in flight, against a fresh broker per
 * case; Gatehouse, plain aedes behind the same TLS settings, and Mosquitto (require_certificate) in the
 * same run, in alternating order. See docs/conventions.md §29 for why broker CPU per connection is the figure
 * to compare (the mqtt.js load generator, not the broker, limits connections/s on 2 cores).
 */
export async function connectBenchmark(): Promise<Record<string, unknown>> {
  const fixture = await benchFixture(DEVICES)
  const mosquitto = mosquittoPath()
  const brokers: BrokerKind[] = ['gatehouse', 'aedes', ...(mosquitto ? (['mosquitto'] as const) : [])]
  console.log(
    `connect storm: ${DEVICES} devices, ${CONCURRENCY} in flight, ${REPS} repetitions; brokers: ${brokers.map((b) => BROKER_LABELS[b]).join(', ')}` +
      (mosquitto ? ` (mosquitto ${mosquittoVersion(mosquitto)})` : ' (mosquitto not installed: skipped)'),
  )
  const loadBefore = machineLoad()
  const runs: ConnectRun[] = []
  for (let rep = 1; rep <= REPS; rep++) {
    for (const broker of alternate(brokers, rep)) {
      const run = await connectCase(broker, rep, fixture)
      runs.push(run)
      console.log(
        `  rep ${rep} ${BROKER_LABELS[broker].padEnd(11)} ${fmt(run.connectionsPerSecond)} conn/s, p50 ${fmt(run.p50Ms, 1)} ms, p99 ${fmt(run.p99Ms, 1)} ms, ` +
          `CPU ${fmt(run.cpuMsPerConnection, 2)} ms/conn, RSS ${fmt(run.rssKiBPerConnection, 1)} KiB/conn, unloaded ${fmt(run.unloadedMedianMs, 1)} ms` +
          (run.failed ? `, ${run.failed} FAILED (${run.failures.slice(0, 3).join('; ')})` : ''),
      )
    }
  }
  const loadAfter = machineLoad()
  console.log(
    `machine load (1-min load average, CPU pressure avg60 %): before ${fmt(loadBefore.loadAverage1m, 2)}, ${fmt(loadBefore.cpuPressureSome60s, 0)}; after ${fmt(loadAfter.loadAverage1m, 2)}, ${fmt(loadAfter.cpuPressureSome60s, 0)}`,
  )
  return {
    ...summarize(runs, brokers, mosquitto ? mosquittoVersion(mosquitto) : null, fixture),
    machineLoad: { before: loadBefore, after: loadAfter },
  }
}

async function connectCase(kind: BrokerKind, rep: number, fixture: BenchFixture): Promise<ConnectRun> {
  const broker = await startBroker(kind, fixture)
  try {
    await settle(SETTLE_MS)
    // Unloaded: one device at a time on an idle broker, from a fresh process (see probe-client.ts).
    // The first few (unmeasured) also warm the broker up before the storm.
    const unloadedMs = await probeConnects(broker.port, fixture.probes, UNLOADED_WARMUP, UNLOADED)
    await settle(300)

    const devices = fixture.devices.slice(0, DEVICES)
    const before = sampleProcess(broker.pid)
    const fleet = await connectFleet(devices, {
      port: broker.port,
      concurrency: CONCURRENCY,
      deadlineMs: 300_000,
      connectTimeoutMs: 30_000,
    })
    const after = sampleProcess(broker.pid)
    await fleet.close()
    await settle(0)

    const latencies = fleet.connected.map((c) => c.latencyMs)
    const n = fleet.connected.length
    const failures = fleet.outcomes.filter((o) => !o.ok).map((o) => `${o.deviceId}: ${o.error}`)
    return {
      broker: kind,
      rep,
      devices: devices.length,
      connected: n,
      failed: devices.length - n,
      failures: failures.slice(0, 10),
      connectionsPerSecond: n / (fleet.elapsedMs / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
      cpuMsPerConnection: (after.cpuMs - before.cpuMs) / n,
      rssKiBPerConnection: (after.rssBytes - before.rssBytes) / 1024 / n,
      rssBeforeMiB: before.rssBytes / 2 ** 20,
      rssAfterMiB: after.rssBytes / 2 ** 20,
      unloadedMs,
      unloadedMedianMs: median(unloadedMs),
    }
  } finally {
    await broker.stop()
  }
}

const METRICS: { key: keyof ConnectRun; title: string; digits: number }[] = [
  { key: 'connectionsPerSecond', title: 'conn/s', digits: 0 },
  { key: 'p50Ms', title: 'p50 ms', digits: 1 },
  { key: 'p99Ms', title: 'p99 ms', digits: 1 },
  { key: 'cpuMsPerConnection', title: 'CPU ms/conn', digits: 2 },
  { key: 'rssKiBPerConnection', title: 'RSS KiB/conn', digits: 1 },
  { key: 'unloadedMedianMs', title: 'unloaded ms', digits: 1 },
]

function summarize(runs: ConnectRun[], brokers: BrokerKind[], mosquitto: string | null, fixture: BenchFixture): Record<string, unknown> {
  const of = (b: BrokerKind) => runs.filter((r) => r.broker === b)
  const medians = Object.fromEntries(
    brokers.map((b) => [b, Object.fromEntries(METRICS.map((m) => [m.key, median(of(b).map((r) => r[m.key] as number))]))]),
  ) as Record<BrokerKind, Record<string, number>>
  const ratios = Object.fromEntries(
    brokers
      .filter((b) => b !== 'aedes')
      .map((b) => [b, Object.fromEntries(METRICS.map((m) => [m.key, medianPairedRatio(of(b), of('aedes'), (r) => r[m.key] as number)]))]),
  ) as Record<string, Record<string, number | null>>
  const failed = Object.fromEntries(brokers.map((b) => [b, of(b).reduce((s, r) => s + r.failed, 0)]))

  console.log()
  printTable([
    [
      `connect storm (${DEVICES} devices, mTLS P-256, ${CONCURRENCY} in flight), median of ${REPS}`,
      ...METRICS.map((m) => m.title),
      'failed',
    ],
    ...brokers.map((b) => [BROKER_LABELS[b], ...METRICS.map((m) => fmt(medians[b][m.key], m.digits)), String(failed[b])]),
    ...Object.entries(ratios).map(([b, r]) => [
      `${BROKER_LABELS[b as BrokerKind]} / plain aedes (median paired ratio)`,
      ...METRICS.map((m) => fmt(r[m.key], 2)),
      '',
    ]),
  ])
  const g = ratios.gatehouse
  if (g) {
    const unloaded = medians.gatehouse.unloadedMedianMs ?? NaN
    const cpu = g.cpuMsPerConnection ?? NaN
    const rss = g.rssKiBPerConnection ?? NaN
    // issue 14: CPU per connection <= 1.0x plain aedes (on the way to <= 1.3x Mosquitto), memory per connection <= 1.0x
    const vsMosquitto = mosquitto ? medians.gatehouse.cpuMsPerConnection! / medians.mosquitto.cpuMsPerConnection! : NaN
    console.log(
      `targets: CPU/conn <= 1.0x aedes: ${fmt(cpu, 2)}x ${cpu <= 1 ? 'met' : 'MISSED'}; ` +
        `RSS/conn <= 1.0x aedes: ${fmt(rss, 2)}x ${rss <= 1 ? 'met' : 'MISSED'}; ` +
        `unloaded connect < 10 ms: ${fmt(unloaded, 1)} ms ${unloaded < 10 ? 'met' : 'MISSED'}` +
        (mosquitto ? `; CPU/conn <= 1.3x Mosquitto (later aim): ${fmt(vsMosquitto, 2)}x ${vsMosquitto <= 1.3 ? 'met' : 'MISSED'}` : ''),
    )
  }
  return {
    devices: DEVICES,
    reps: REPS,
    concurrency: CONCURRENCY,
    cpus: cpus().length,
    mosquitto,
    provisionSeconds: fixture.provisionSeconds,
    medians,
    ratiosVsPlainAedes: ratios,
    failed,
    runs,
  }
}
