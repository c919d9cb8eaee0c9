import { cpus } from 'node:os'
import { configSchema } from '../config.ts'
import { connectFleet, type DeviceBundle } from '../device-sim/index.ts'
import { BROKER_LABELS, mosquittoPath, mosquittoVersion, startBroker, type BrokerKind } from './brokers/launch.ts'
import { benchFixture, type BenchFixture } from './fixture.ts'
import { machineLoad, sampleProcess } from './proc-stats.ts'
import { pacedLoad, publishLoad } from './publish-load.ts'
import { alternate, envInt, fmt, median, medianPairedRatio, percentile, printTable } from './table.ts'

const REPS = envInt('BENCH_REPS', 3)
/** timed messages per case (all publishers together) */
const MESSAGES = envInt('BENCH_MESSAGES', 100_000)
const PUBLISHERS = envInt('BENCH_PUBLISHERS', 20)
/** publishes in flight per publisher */
const WINDOW = envInt('BENCH_WINDOW', 10)
/** unmeasured messages first: until V8 has optimised the hot paths, a message costs several times more */
const WARMUP = Math.min(10_000, Math.max(PUBLISHERS, Math.floor(MESSAGES / 5)))
/** then a light, paced load for latency on a broker that is not saturated */
const LIGHT_MESSAGES = envInt('BENCH_LIGHT_MESSAGES', 1000)
const LIGHT_RATE = envInt('BENCH_LIGHT_RATE', 1000)
/**
 * Time caps, so that a slow broker bounds the run instead of stretching it: the timed window stops
 * starting publishes after BENCH_MAX_WINDOW_SECONDS (the rate is then what was delivered in it), the
 * warm-up after 5 s, and whatever is not delivered DRAIN_MS after the last publish counts as lost.
 */
const MAX_WINDOW_MS = envInt('BENCH_MAX_WINDOW_SECONDS', 10) * 1000
const MAX_WARMUP_MS = 5000
const DRAIN_MS = 10_000
/** Gatehouse's consumer: the same aedes subscription as plain aedes ('subscribe'), or broker.onDevicePublish ('listener') */
const GATEHOUSE_CONSUMER = process.env.BENCH_GATEHOUSE_CONSUMER === 'listener' ? 'listener' : 'subscribe'

const CASES = [
  { qos: 0, size: 64 },
  { qos: 0, size: 1024 },
  { qos: 1, size: 64 },
  { qos: 1, size: 1024 },
] as const
type Case = (typeof CASES)[number]
const caseName = (c: Case) => `QoS ${c.qos}, ${c.size === 1024 ? '1 KiB' : `${c.size} B`}`
/** BENCH_CASES=1/64,0/1024 (QoS/bytes) and BENCH_BROKERS=gatehouse-ai-off,aedes: a subset, for profiling and A/B runs */
const pick = <T>(name: string, all: readonly T[], key: (x: T) => string): T[] => {
  const wanted = process.env[name]?.split(',').map((w) => w.trim())
  return wanted ? all.filter((x) => wanted.includes(key(x))) : [...all]
}

export interface ThroughputRun {
  broker: BrokerKind
  rep: number
  case: string
  qos: 0 | 1
  size: number
  /** publishes started in the timed window (MESSAGES unless the time cap stopped it) */
  messages: number
  capped: boolean
  delivered: number
  /** publishes that never completed (QoS 1: no PUBACK; QoS 0: not written) */
  publishFailed: number
  /** delivered / (first publish -> all delivered and, QoS 1, all acknowledged) */
  messagesPerSecond: number
  /** publish -> arrival at the consumer, at saturation (queueing: WINDOW in flight per publisher) */
  p50Ms: number
  p99Ms: number
  /** QoS 1: publish -> PUBACK at the publisher, at saturation */
  ackP50Ms: number | null
  ackP99Ms: number | null
  /** publish -> arrival at the consumer under a light paced load (LIGHT_RATE msg/s) */
  lightP50Ms: number
  lightP99Ms: number
  lightAckP50Ms: number | null
  lightMessages: number
  lightDelivered: number
  /** broker utime+stime over the timed window / delivered messages, in microseconds */
  cpuUsPerMessage: number
  stray: number
}

/**
 * Publish throughput: PUBLISHERS devices publish to their own devices/{id}/telemetry (the only topic
 * Gatehouse lets them publish to), WINDOW publishes in flight each, and ONE consumer receives
 * everything. Gatehouse's topic policy forbids any device subscribing to other devices' telemetry, so
 * for Gatehouse and plain aedes the consumer is an aedes subscription to devices/+/telemetry/# inside
 * the broker process; for Mosquitto it is a subscriber client (QoS 0, mqtt.js, own process: its CPU is
 * not the broker's, but Mosquitto pays for encrypting and writing every message to it).
 */
export async function throughputBenchmark(): Promise<Record<string, unknown>> {
  const fixture = await benchFixture(PUBLISHERS)
  const mosquitto = mosquittoPath()
  // Gatehouse as shipped (AI bridge on by default) and with the AI bridge off: the broker's own cost
  const aiSwitch = 'aiEnabled' in (configSchema.properties ?? {}) && process.env.BENCH_AI_OFF_VARIANT !== 'no'
  const brokers: BrokerKind[] = pick(
    'BENCH_BROKERS',
    ['gatehouse', ...(aiSwitch ? (['gatehouse-ai-off'] as const) : []), 'aedes', ...(mosquitto ? (['mosquitto'] as const) : [])],
    (b) => b,
  )
  const cases = pick('BENCH_CASES', CASES, (c) => `${c.qos}/${c.size}`)
  console.log(
    `throughput: ${PUBLISHERS} publishers x ${WINDOW} in flight, ${MESSAGES} timed messages per case after ${WARMUP} warm-up, ${REPS} repetitions; ` +
      `consumer: in-broker aedes subscription${GATEHOUSE_CONSUMER === 'listener' ? ' (Gatehouse: broker.onDevicePublish)' : ''}` +
      (mosquitto ? `, Mosquitto ${mosquittoVersion(mosquitto)}: subscriber process` : ' (mosquitto not installed: skipped)'),
  )
  const loadBefore = machineLoad()
  const runs: ThroughputRun[] = []
  for (let rep = 1; rep <= REPS; rep++) {
    for (const c of cases) {
      for (const broker of alternate(brokers, rep)) {
        const run = await throughputCase(broker, rep, c, fixture)
        runs.push(run)
        console.log(
          `  rep ${rep} ${caseName(c).padEnd(14)} ${BROKER_LABELS[broker].padEnd(24)} ${fmt(run.messagesPerSecond)} msg/s, sat p50 ${fmt(run.p50Ms, 2)} ms, ` +
            `p99 ${fmt(run.p99Ms, 2)} ms, CPU ${fmt(run.cpuUsPerMessage, 1)} us/msg; light p50 ${fmt(run.lightP50Ms, 2)} ms, p99 ${fmt(run.lightP99Ms, 2)} ms` +
            (run.capped ? `, time cap: ${run.messages} of ${MESSAGES} sent` : '') +
            (run.delivered < run.messages || run.publishFailed
              ? `, delivered ${run.delivered}/${run.messages}, ${run.publishFailed} publishes failed`
              : ''),
        )
      }
    }
  }
  const loadAfter = machineLoad()
  console.log(
    `machine load (1-min load average, CPU pressure avg60 %): before ${fmt(loadBefore.loadAverage1m, 2)}, ${fmt(loadBefore.cpuPressureSome60s, 0)}; after ${fmt(loadAfter.loadAverage1m, 2)}, ${fmt(loadAfter.cpuPressureSome60s, 0)}`,
  )
  return {
    ...summarize(runs, brokers, mosquitto ? mosquittoVersion(mosquitto) : null),
    machineLoad: { before: loadBefore, after: loadAfter },
  }
}

async function throughputCase(kind: BrokerKind, rep: number, c: Case, fixture: BenchFixture): Promise<ThroughputRun> {
  const broker = await startBroker(kind, fixture, {
    consume: { subscriberDevice: fixture.probes[0] as DeviceBundle, gatehouseMode: GATEHOUSE_CONSUMER },
  })
  const consumer = broker.consumer
  if (!consumer) throw new Error(`${kind}: no consumer`)
  const fleet = await connectFleet(fixture.devices.slice(0, PUBLISHERS), { port: broker.port, concurrency: 10, deadlineMs: 60_000 })
  try {
    if (fleet.connected.length < PUBLISHERS) {
      throw new Error(
        `${kind}: only ${fleet.connected.length}/${PUBLISHERS} publishers connected: ${fleet.outcomes.find((o) => !o.ok)?.error}`,
      )
    }
    // warm-up: same shape, not measured
    await consumer.expect(WARMUP)
    const warm = await publishLoad(fleet.connected, WARMUP, { qos: c.qos, size: c.size, window: WINDOW, timeoutMs: MAX_WARMUP_MS })
    if (warm.sent < WARMUP) consumer.lower(warm.sent)
    await consumer.reached(DRAIN_MS)

    await consumer.expect(MESSAGES)
    const before = sampleProcess(broker.pid)
    const t0 = process.hrtime.bigint()
    const published = await publishLoad(fleet.connected, MESSAGES, { qos: c.qos, size: c.size, window: WINDOW, timeoutMs: MAX_WINDOW_MS })
    if (published.sent < MESSAGES) consumer.lower(published.sent)
    const lastArrival = await consumer.reached(DRAIN_MS)
    const after = sampleProcess(broker.pid)
    const end = process.hrtime.bigint()
    const report = await consumer.report()

    // latency on a lightly loaded broker: a paced open-loop load after the timed window
    await consumer.expect(LIGHT_MESSAGES)
    const light = await pacedLoad(fleet.connected, LIGHT_MESSAGES, LIGHT_RATE, { qos: c.qos, size: c.size, timeoutMs: MAX_WINDOW_MS })
    if (light.sent < LIGHT_MESSAGES) consumer.lower(light.sent)
    await consumer.reached(DRAIN_MS)
    const lightReport = await consumer.report()

    // the window ends when everything was delivered and (QoS 1) acknowledged
    // biome-ignore lint/complexity/useMathMinMax: these are bigint nanoseconds, which Math.max does not take
    const windowEnd = lastArrival !== null ? (lastArrival > published.lastCompletionNs ? lastArrival : published.lastCompletionNs) : end
    const seconds = Number(windowEnd - t0) / 1e9
    const delivered = Math.min(report.received, published.sent)
    return {
      broker: kind,
      rep,
      case: caseName(c),
      qos: c.qos,
      size: c.size,
      messages: published.sent,
      capped: published.sent < MESSAGES,
      delivered,
      publishFailed: published.failed,
      messagesPerSecond: delivered / seconds,
      p50Ms: report.latencyP50Ms,
      p99Ms: report.latencyP99Ms,
      ackP50Ms: c.qos === 1 ? percentile(published.ackLatenciesMs, 50) : null,
      ackP99Ms: c.qos === 1 ? percentile(published.ackLatenciesMs, 99) : null,
      lightP50Ms: lightReport.latencyP50Ms,
      lightP99Ms: lightReport.latencyP99Ms,
      lightAckP50Ms: c.qos === 1 ? percentile(light.ackLatenciesMs, 50) : null,
      lightMessages: light.sent,
      lightDelivered: Math.min(lightReport.received, light.sent),
      cpuUsPerMessage: ((after.cpuMs - before.cpuMs) * 1000) / delivered,
      stray: report.stray,
    }
  } finally {
    await fleet.close()
    await broker.stop()
  }
}

type MetricKey = 'messagesPerSecond' | 'cpuUsPerMessage' | 'p50Ms' | 'p99Ms' | 'ackP50Ms' | 'lightP50Ms' | 'lightP99Ms' | 'lightAckP50Ms'
const METRICS: { key: MetricKey; title: string; digits: number }[] = [
  { key: 'messagesPerSecond', title: 'msg/s', digits: 0 },
  { key: 'cpuUsPerMessage', title: 'CPU us/msg', digits: 1 },
  { key: 'p50Ms', title: 'sat p50 ms', digits: 1 },
  { key: 'p99Ms', title: 'sat p99 ms', digits: 1 },
  { key: 'ackP50Ms', title: 'sat PUBACK p50', digits: 1 },
  { key: 'lightP50Ms', title: 'light p50 ms', digits: 2 },
  { key: 'lightP99Ms', title: 'light p99 ms', digits: 2 },
  { key: 'lightAckP50Ms', title: 'light PUBACK p50', digits: 2 },
]

/** Issue 14's aims, as ratios to plain aedes in this run (Mosquitto's ratio beside them when it ran). */
const AIMS: { broker: BrokerKind; metric: MetricKey; title: string; cases: 'all' | string; bound: number; atMost: boolean }[] = [
  { broker: 'gatehouse', metric: 'cpuUsPerMessage', title: 'CPU/msg as shipped', cases: 'all', bound: 1.3, atMost: true },
  { broker: 'gatehouse-ai-off', metric: 'cpuUsPerMessage', title: 'CPU/msg, AI bridge off', cases: 'all', bound: 1.1, atMost: true },
  {
    broker: 'gatehouse',
    metric: 'messagesPerSecond',
    title: 'msg/s at saturation as shipped',
    cases: 'QoS 0, 64 B',
    bound: 0.8,
    atMost: false,
  },
]

type CaseSummary = { case: string; ratiosVsPlainAedes: Record<string, Record<string, number | null>> }

function printAims(cases: CaseSummary[], brokers: BrokerKind[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  for (const aim of AIMS.filter((a) => brokers.includes(a.broker))) {
    for (const c of cases.filter((x) => aim.cases === 'all' || x.case === aim.cases)) {
      const ratio = c.ratiosVsPlainAedes[aim.broker]?.[aim.metric] ?? Number.NaN
      const mosquitto = c.ratiosVsPlainAedes.mosquitto?.[aim.metric]
      const pass = aim.atMost ? ratio <= aim.bound : ratio >= aim.bound
      out.push({ aim: aim.title, case: c.case, bound: aim.bound, atMost: aim.atMost, ratio, mosquitto: mosquitto ?? null, pass })
      console.log(
        `aim: ${aim.title.padEnd(31)} ${c.case.padEnd(13)} ${aim.atMost ? '<=' : '>='} ${aim.bound}x aedes: ${fmt(ratio, 2)}x ${pass ? 'PASS' : 'MISS'}` +
          (mosquitto != null ? ` (Mosquitto ${fmt(mosquitto, 2)}x)` : ''),
      )
    }
  }
  return out
}

function summarize(runs: ThroughputRun[], brokers: BrokerKind[], mosquitto: string | null): Record<string, unknown> {
  const rows: (string | number)[][] = [
    [
      `throughput (${PUBLISHERS} publishers x ${WINDOW} in flight; light = ${LIGHT_RATE} msg/s paced), median of ${REPS}`,
      ...METRICS.map((m) => m.title),
      'lost',
    ],
  ]
  const cases = CASES.filter((c) => runs.some((r) => r.case === caseName(c))).map((c) => {
    const name = caseName(c)
    const of = (b: BrokerKind) => runs.filter((r) => r.broker === b && r.case === name)
    const value = (r: ThroughputRun, key: MetricKey) => r[key] ?? NaN
    const medians = Object.fromEntries(
      brokers.map((b) => [b, Object.fromEntries(METRICS.map((m) => [m.key, median(of(b).map((r) => value(r, m.key)))]))]),
    )
    const ratios = Object.fromEntries(
      brokers
        .filter((b) => b !== 'aedes')
        .map((b) => [b, Object.fromEntries(METRICS.map((m) => [m.key, medianPairedRatio(of(b), of('aedes'), (r) => value(r, m.key))]))]),
    ) as Record<string, Record<string, number | null>>
    const lost = Object.fromEntries(
      brokers.map((b) => [b, of(b).reduce((s, r) => s + (r.messages - r.delivered) + (r.lightMessages - r.lightDelivered), 0)]),
    )
    rows.push([name, ...METRICS.map(() => ''), ''])
    for (const b of brokers)
      rows.push([`  ${BROKER_LABELS[b]}`, ...METRICS.map((m) => fmt(medians[b]?.[m.key], m.digits)), String(lost[b])])
    for (const [b, r] of Object.entries(ratios))
      rows.push([`  ${BROKER_LABELS[b as BrokerKind]} / plain aedes`, ...METRICS.map((m) => fmt(r[m.key], 2)), ''])
    return { case: name, qos: c.qos, size: c.size, medians, ratiosVsPlainAedes: ratios, lost }
  })
  console.log()
  printTable(rows)
  const aims = printAims(cases, brokers)
  return {
    aims,
    reps: REPS,
    messages: MESSAGES,
    warmup: WARMUP,
    lightMessages: LIGHT_MESSAGES,
    lightRatePerSecond: LIGHT_RATE,
    maxWindowSeconds: MAX_WINDOW_MS / 1000,
    publishers: PUBLISHERS,
    window: WINDOW,
    gatehouseConsumer: GATEHOUSE_CONSUMER,
    cpus: cpus().length,
    mosquitto,
    cases,
    runs,
  }
}
