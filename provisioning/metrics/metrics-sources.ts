import type { Clock, Histogram } from '../../certs/index.ts'

/**
 * What the metrics collector reads at scrape time, declared here by its consumer (docs/conventions.md §3):
 * the broker's and the AI bridge's objects match these structurally, and the composition root passes
 * them in, so provisioning/ still imports nothing of broker/ (docs/architecture.md, "Metrics").
 * Every count is a plain number the plane keeps; nothing here is called on the hot path.
 */
export interface BrokerMetricsSource {
  connectedDeviceIds(): readonly string[]
  stats(): {
    accepted: { device: number; claim: number }
    refused: ReadonlyMap<string, number>
    tlsFailures: ReadonlyMap<string, number>
    publishesIn: Readonly<Record<string, number>>
    messagesOut: Readonly<Record<string, number>>
    limitHits: ReadonlyMap<string, number>
  }
  sessionStats(): { queuedMessages: number; queuedBytes: number; droppedMessages: number; refusedInbound: number }
}

export interface AiProviderMetrics {
  calls: number
  insights: number
  failed: number
  retries: number
  circuitRejected: number
  tokens: number
  circuit: string
  latency: Readonly<Histogram>
}

export interface AiMetricsSource {
  stats(): {
    received: number
    skipped: number
    dropped: number
    noConsent: number
    throttled: number
    forwarded: number
    insights: number
    failed: number
    errors: number
    queueDepth: number
    openWindows: number
    providers: Readonly<Record<string, AiProviderMetrics>>
    tokensByTier: Readonly<Record<string, number>>
  }
}

export interface RouteMetricsSource {
  stats(): { received: number; overflow: number; delivered: number; batches: number; retries: number; failed: number; skipped: number }
}

export interface MetricsSources {
  broker: BrokerMetricsSource
  /** the control plane's limit hits by kind (the API's per-key rate, the claim request rate), beside the broker's */
  controlLimitHits(): Readonly<Record<string, number>>
  /** absent when the AI bridge is off */
  ai?: AiMetricsSource
  /** telemetry routes, summed over all routes (broker/telemetry-routes/); absent when not wired */
  routes?: RouteMetricsSource
  /** the change feed's position and the registry's newest event: their difference is the feed's lag */
  feed: { position(): { seq: number; polledAt: Date | null } }
  registry: {
    lastEventSeq(): Promise<number>
    countCertificatesExpiring(from: Date, to: Date): Promise<number>
    auditWriteFailures(): number
  }
  settings: { syncCounts(): Promise<{ inSync: number; outOfSync: number }> }
  /** the directory's lookup latencies (registry-directory.ts) */
  lookups: { device: Readonly<Histogram>; claim: Readonly<Histogram> }
  /** audit records the directory dropped while its pending audit writes were at their bound (registry-directory.ts) */
  auditsDropped(): number
  /** the CA certificates the broker trusts now (root and issuing), read again after a rotation */
  caCertificates(): { role: 'root' | 'issuing'; notAfter: Date }[]
  clock: Clock
  /** gatehouse_build_info's labels */
  build: { version: string }
}
