import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client'
import type { Histogram } from '../../certs/index.ts'
import type { MetricsSources } from './metrics-sources.ts'

const METRICS_PREFIX = 'gatehouse_'
const DAY_MS = 24 * 3600_000

type Labels = Record<string, string>
type Sample = [Labels, number]

export interface Metrics {
  /** the Prometheus text exposition of every series, read from the sources now */
  render(): Promise<string>
  contentType: string
}

/**
 * The Prometheus registry of one Gatehouse process (prom-client): every series is read from its source
 * at scrape time (collect()), so the planes only keep plain numbers (docs/architecture.md, "Metrics").
 * Label values come from fixed lists or from configuration (tiers, providers), never from a device; the
 * series and their labels are listed in the README ("Monitoring"). A source's stats() that copies its
 * state is read once per scrape (readOncePer), and a series whose source has no sample yet is absent.
 */
export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX })
  const scrapes = { count: 0 }
  const perScrape = <T>(read: () => T) => readOncePer(scrapes, read)
  const gauge = (name: string, help: string, labelNames: string[], read: () => Iterable<Sample> | Promise<Iterable<Sample>>) =>
    new Gauge({
      name: METRICS_PREFIX + name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const rows = await read()
        this.reset()
        let samples = 0
        for (const [labels, value] of rows) {
          this.set(labels, value)
          samples++
        }
        // prom-client answers 0 for an unlabelled gauge never set: absent says "no value yet" instead
        if (samples === 0 && labelNames.length === 0) this.remove({})
      },
    })
  const counter = (name: string, help: string, labelNames: string[], read: () => Iterable<Sample> | Promise<Iterable<Sample>>) =>
    new Counter({
      name: METRICS_PREFIX + name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const rows = await read()
        this.reset()
        for (const [labels, value] of rows) this.inc(labels, value)
      },
    })
  const histogram = (name: string, help: string, read: () => Iterable<[Labels, Readonly<Histogram>]>) =>
    registry.registerMetric(snapshotHistogram(METRICS_PREFIX + name, help, read))

  const { broker, ai } = sources
  const snapshots: MetricsSources = {
    ...sources,
    broker: {
      connectedDeviceIds: () => broker.connectedDeviceIds(),
      stats: () => broker.stats(),
      sessionStats: perScrape(() => broker.sessionStats()),
    },
    ...(ai && { ai: { stats: perScrape(() => ai.stats()) } }),
  }
  brokerMetrics(snapshots, gauge, counter)
  if (snapshots.ai) aiMetrics(snapshots.ai, gauge, counter, histogram)
  const routes = sources.routes
  if (routes) {
    const outcomes = ['received', 'delivered', 'overflow', 'failed', 'skipped'] as const
    counter('route_messages_total', 'Telemetry messages handed to routes, by outcome (all routes summed)', ['outcome'], () => {
      const s = routes.stats()
      return outcomes.map((o): Sample => [{ outcome: o }, s[o]])
    })
    counter('route_retries_total', 'Route deliveries retried after a 5xx, a 429, a timeout or a network error', [], () => [
      [{}, routes.stats().retries],
    ])
  }
  controlPlaneMetrics(snapshots, gauge, counter, histogram)
  gauge('build_info', 'Always 1; the labels say which Gatehouse and Node.js run', ['version', 'node'], () => [
    [{ version: sources.build.version, node: process.version }, 1],
  ])
  return {
    render: () => {
      scrapes.count++
      return registry.metrics()
    },
    contentType: registry.contentType,
  }
}

/**
 * read() once per scrape: the first series of a scrape that asks calls it, the others get that copy.
 * prom-client calls every collect() of one scrape synchronously, so a scrape sees one consistent copy.
 */
function readOncePer<T>(scrapes: { count: number }, read: () => T): () => T {
  let at = -1
  let value: T
  return () => {
    if (at !== scrapes.count) {
      value = read()
      at = scrapes.count
    }
    return value
  }
}

type SeriesFn = (name: string, help: string, labelNames: string[], read: () => Iterable<Sample> | Promise<Iterable<Sample>>) => unknown
type HistogramFn = (name: string, help: string, read: () => Iterable<[Labels, Readonly<Histogram>]>) => unknown

const byKey = (label: string, entries: Iterable<[string, number]>): Sample[] => [...entries].map(([k, v]) => [{ [label]: k }, v])

function brokerMetrics(sources: MetricsSources, gauge: SeriesFn, counter: SeriesFn): void {
  const { broker } = sources
  gauge('connections', 'Devices connected now', [], () => [[{}, broker.connectedDeviceIds().length]])
  counter('connections_accepted_total', 'Sessions that got CONNACK 0, by kind (device, claim)', ['kind'], () =>
    byKey('kind', Object.entries(broker.stats().accepted)),
  )
  counter('connections_refused_total', 'Connections refused, by reason', ['reason'], () => byKey('reason', broker.stats().refused))
  counter('tls_handshake_failures_total', 'TLS handshakes that failed, by code', ['reason'], () =>
    byKey('reason', broker.stats().tlsFailures),
  )
  counter('publishes_received_total', 'PUBLISH packets accepted from devices and claim sessions, by topic class', ['class'], () =>
    byKey('class', Object.entries(broker.stats().publishesIn)),
  )
  counter('messages_sent_total', 'Messages the broker published to devices and claim sessions, by topic class', ['class'], () =>
    byKey('class', Object.entries(broker.stats().messagesOut)),
  )
  counter('limit_hits_total', 'Times a limit of either plane stopped a connection, a packet or a request, by kind', ['kind'], () => [
    ...byKey('kind', broker.stats().limitHits),
    ...byKey('kind', Object.entries(sources.controlLimitHits())),
  ])
  gauge('session_queued_messages', 'Messages queued for offline or slow devices', [], () => [[{}, broker.sessionStats().queuedMessages]])
  gauge('session_queued_bytes', 'Bytes queued for offline or slow devices', [], () => [[{}, broker.sessionStats().queuedBytes]])
  counter('session_queue_dropped_total', 'Queued messages dropped over a queue bound', [], () => [
    [{}, broker.sessionStats().droppedMessages],
  ])
}

function aiMetrics(ai: NonNullable<MetricsSources['ai']>, gauge: SeriesFn, counter: SeriesFn, histogram: HistogramFn): void {
  const outcomes = ['received', 'skipped', 'dropped', 'noConsent', 'throttled', 'forwarded', 'insights', 'failed', 'errors'] as const
  counter('ai_messages_total', 'AI bridge telemetry messages and requests, by outcome', ['outcome'], () => {
    const s = ai.stats()
    return outcomes.map((o): Sample => [{ outcome: snake(o) }, s[o]])
  })
  gauge('ai_queue_depth', 'Telemetry messages waiting for the AI bridge', [], () => [[{}, ai.stats().queueDepth]])
  gauge('ai_open_windows', 'Devices with an open AI window', [], () => [[{}, ai.stats().openWindows]])
  counter('ai_tokens_total', 'AI tokens reported by the providers, by tier', ['tier'], () =>
    byKey('tier', Object.entries(ai.stats().tokensByTier)),
  )
  const providers = () => Object.entries(ai.stats().providers)
  counter('ai_provider_calls_total', 'Provider calls (each retry is one), by provider', ['provider'], () =>
    providers().map(([p, s]): Sample => [{ provider: p }, s.calls]),
  )
  counter('ai_provider_failures_total', 'Provider requests that ended without an insight, by provider', ['provider'], () =>
    providers().map(([p, s]): Sample => [{ provider: p }, s.failed]),
  )
  gauge('ai_provider_circuit_open', '1 while the provider circuit breaker is open or half-open', ['provider'], () =>
    providers().map(([p, s]): Sample => [{ provider: p }, s.circuit === 'closed' ? 0 : 1]),
  )
  histogram('ai_provider_latency_seconds', 'Seconds per provider call, by provider', () =>
    providers().map(([p, s]) => [{ provider: p }, s.latency]),
  )
}

function controlPlaneMetrics(sources: MetricsSources, gauge: SeriesFn, counter: SeriesFn, histogram: HistogramFn): void {
  const { registry, feed, clock } = sources
  counter('audit_write_failures_total', 'Audit records that could not be written (a full disk, a lock), each also logged', [], () => [
    [{}, registry.auditWriteFailures()],
  ])
  counter(
    'audit_dropped_total',
    'Audit records dropped unwritten while 10,000 audit writes before them waited for the registry',
    [],
    () => [[{}, sources.auditsDropped()]],
  )
  gauge('change_feed_lag_events', 'Events committed to the registry and not yet delivered by the change feed', [], async () => [
    [{}, Math.max(0, (await registry.lastEventSeq()) - feed.position().seq)],
  ])
  gauge('change_feed_last_poll_age_seconds', 'Seconds since the change feed last read the registry', [], () => {
    const at = feed.position().polledAt
    return at === null ? [] : [[{}, (clock.now().getTime() - at.getTime()) / 1000]]
  })
  histogram(
    'registry_lookup_seconds',
    'Seconds per directory lookup of a CONNECT (change feed catch-up and registry reads), by query',
    () => [
      [{ query: 'device' }, sources.lookups.device],
      [{ query: 'claim' }, sources.lookups.claim],
    ],
  )
  gauge('certificates_expiring', 'Active device certificates that expire within the window (7d, 30d)', ['within'], () => {
    const now = clock.now()
    return Promise.all(
      [7, 30].map(
        async (days): Promise<Sample> => [
          { within: `${days}d` },
          await registry.countCertificatesExpiring(now, new Date(now.getTime() + days * DAY_MS)),
        ],
      ),
    )
  })
  gauge('ca_expiry_timestamp_seconds', 'When the CA certificate expires (Unix seconds), by role (root, issuing)', ['role'], () =>
    sources.caCertificates().map(({ role, notAfter }): Sample => [{ role }, notAfter.getTime() / 1000]),
  )
  gauge(
    'settings_devices',
    'Active devices whose last settings report names their current version (in-sync) or not',
    ['state'],
    async () => {
      const { inSync, outOfSync } = await sources.settings.syncCounts()
      return [
        [{ state: 'in-sync' }, inSync],
        [{ state: 'out-of-sync' }, outOfSync],
      ]
    },
  )
}

const snake = (k: string) => k.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()

/**
 * A histogram series family from the plain-data histograms the planes keep (certs/histogram.ts).
 * prom-client's Histogram only takes observations, so this is the one metric made by hand: it answers
 * get() as prom-client's own histograms do.
 */
function snapshotHistogram(name: string, help: string, read: () => Iterable<[Labels, Readonly<Histogram>]>): Metric {
  const get = async () => ({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    values: [...read()].flatMap(([labels, h]) => {
      let running = 0
      const cumulative = h.counts.map((c) => (running += c))
      return [
        ...h.bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative[i] ?? 0 })),
        { metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: running },
        { metricName: `${name}_sum`, labels, value: h.sum },
        { metricName: `${name}_count`, labels, value: running },
      ]
    }),
  })
  return { name, help, type: 'histogram', get } as unknown as Metric
}
