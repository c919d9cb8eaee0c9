import { describe, expect, it } from 'vitest'
import { createHistogram, observeHistogram } from '../../../../certs/index.ts'
import { createMetrics } from '../../../../provisioning/metrics/index.ts'
import type { AiMetricsSource, MetricsSources } from '../../../../provisioning/metrics/metrics-sources.ts'
import { fixedClock } from '../../../helpers/clock.ts'

/**
 * The collector over plain-data sources (the interfaces it declares, which the planes' objects match):
 * how often it reads a source per scrape, and what it answers before the change feed's first poll.
 * The integration test (test/integration/provisioning/metrics.test.ts) scrapes the real planes.
 */
function aiStats(): ReturnType<AiMetricsSource['stats']> {
  const latency = createHistogram()
  observeHistogram(latency, 0.2)
  return {
    received: 0,
    skipped: 0,
    dropped: 0,
    noConsent: 0,
    throttled: 0,
    forwarded: 0,
    insights: 0,
    failed: 0,
    errors: 0,
    queueDepth: 0,
    openWindows: 0,
    providers: { openai: { calls: 1, insights: 1, failed: 0, retries: 0, circuitRejected: 0, tokens: 10, circuit: 'closed', latency } },
    tokensByTier: { standard: 10 },
  }
}

function sources(overrides: Partial<MetricsSources> = {}) {
  const clock = fixedClock()
  const counts = { aiStats: 0, sessionStats: 0 }
  const ai = aiStats()
  const live = {
    clock,
    counts,
    ai,
    sources: {
      broker: {
        connectedDeviceIds: () => [],
        stats: () => ({
          accepted: { device: 0, claim: 0 },
          refused: new Map(),
          tlsFailures: new Map(),
          publishesIn: {},
          messagesOut: {},
          limitHits: new Map(),
        }),
        sessionStats: () => {
          counts.sessionStats++
          return { queuedMessages: 0, queuedBytes: 0, droppedMessages: 0, refusedInbound: 0 }
        },
      },
      controlLimitHits: () => ({}),
      // a copy each call, as the AI bridge's stats() is
      ai: {
        stats: () => {
          counts.aiStats++
          return structuredClone(ai)
        },
      },
      feed: { position: () => ({ seq: 0, polledAt: null }) },
      registry: { lastEventSeq: async () => 0, countCertificatesExpiring: async () => 0, auditWriteFailures: () => 0 },
      settings: { syncCounts: async () => ({ inSync: 0, outOfSync: 0 }) },
      lookups: { device: createHistogram(), claim: createHistogram() },
      auditsDropped: () => 0,
      caCertificates: () => [],
      clock,
      build: { version: '0.0.0' },
      ...overrides,
    } satisfies MetricsSources,
  }
  return live
}

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('createMetrics', () => {
  it("reads the AI bridge's stats() and the session stats once per scrape, and every series of a scrape from that copy", async () => {
    const s = sources()
    const metrics = createMetrics(s.sources)
    s.ai.forwarded = 3
    s.ai.queueDepth = 2
    const first = await metrics.render()
    expect(s.counts).toEqual({ aiStats: 1, sessionStats: 1 })
    expect(sample(first, 'gatehouse_ai_messages_total{outcome="forwarded"}')).toBe(3)
    expect(sample(first, 'gatehouse_ai_queue_depth')).toBe(2)
    expect(sample(first, 'gatehouse_ai_provider_latency_seconds_count{provider="openai"}')).toBe(1)

    // the next scrape reads again: no value is kept from the previous one
    s.ai.forwarded = 5
    s.ai.queueDepth = 0
    s.ai.tokensByTier = { standard: 25 }
    const second = await metrics.render()
    expect(s.counts).toEqual({ aiStats: 2, sessionStats: 2 })
    expect(sample(second, 'gatehouse_ai_messages_total{outcome="forwarded"}')).toBe(5)
    expect(sample(second, 'gatehouse_ai_queue_depth')).toBe(0)
    expect(sample(second, 'gatehouse_ai_tokens_total{tier="standard"}')).toBe(25)
  })

  it('leaves gatehouse_change_feed_last_poll_age_seconds out until the first poll, then answers its age', async () => {
    let polledAt: Date | null = null
    const s = sources({ feed: { position: () => ({ seq: 0, polledAt }) } })
    const metrics = createMetrics(s.sources)
    const before = await metrics.render()
    expect(before).toContain('# TYPE gatehouse_change_feed_last_poll_age_seconds gauge')
    expect(sample(before, 'gatehouse_change_feed_last_poll_age_seconds')).toBeUndefined()
    // an unlabelled series that has a value still answers it, 0 included
    expect(sample(before, 'gatehouse_change_feed_lag_events')).toBe(0)

    polledAt = s.clock.now()
    s.clock.advance('90s')
    expect(sample(await metrics.render(), 'gatehouse_change_feed_last_poll_age_seconds')).toBe(90)
  })
})
