import { createHistogram, type Histogram } from '../../certs/index.ts'
import type { CircuitState } from './circuit-breaker.ts'

export interface ProviderStats {
  /** calls made (each retry is a call) */
  calls: number
  insights: number
  /** requests that ended without an insight */
  failed: number
  retries: number
  /** requests refused at once because the circuit was open */
  circuitRejected: number
  /** AI tokens reported by the provider */
  tokens: number
  circuit: CircuitState
  /** seconds per call, from the request to its answer or failure */
  latency: Histogram
}

/**
 * Counters since attach (monotonic) and two gauges, plain numbers the bridge adds to; the metrics
 * collector (provisioning/metrics/) reads them at scrape time. Keys are stable: they are metric names.
 */
export interface AiBridgeStats {
  /** telemetry messages seen */
  received: number
  /** not JSON, or larger than maxTelemetryBytes, or from a device the control plane does not know */
  skipped: number
  skippedInvalid: number
  skippedOversized: number
  skippedUnknownDevice: number
  /** queue full (in total or for the device) */
  dropped: number
  /** the device's settings say ai.consent: false */
  noConsent: number
  /** over the token bucket or the daily budget: not forwarded */
  throttled: number
  throttleNotices: number
  /** telemetry messages handed to a provider */
  forwarded: number
  /** insights published */
  insights: number
  /** provider requests that produced no insight (errors, timeouts, open circuit) */
  failed: number
  /** the control plane or the usage ledger failed to answer */
  errors: number
  /** gauge: messages waiting */
  queueDepth: number
  /** gauge: devices with an open window */
  openWindows: number
  providers: Record<string, ProviderStats>
  /** AI tokens reported by the providers, by the device's tier (tiers are configuration, never device ids) */
  tokensByTier: Record<string, number>
  /** throttled telemetry messages (as `throttled`), by the device's tier */
  throttledByTier: Record<string, number>
}

export function emptyStats(providers: string[]): AiBridgeStats {
  return {
    received: 0,
    skipped: 0,
    skippedInvalid: 0,
    skippedOversized: 0,
    skippedUnknownDevice: 0,
    dropped: 0,
    noConsent: 0,
    throttled: 0,
    throttleNotices: 0,
    forwarded: 0,
    insights: 0,
    failed: 0,
    errors: 0,
    queueDepth: 0,
    openWindows: 0,
    providers: Object.fromEntries(
      providers.map((p) => [
        p,
        {
          calls: 0,
          insights: 0,
          failed: 0,
          retries: 0,
          circuitRejected: 0,
          tokens: 0,
          circuit: 'closed' as CircuitState,
          latency: createHistogram(),
        },
      ]),
    ),
    tokensByTier: {},
    throttledByTier: {},
  }
}
