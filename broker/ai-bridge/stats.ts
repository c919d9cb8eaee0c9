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
}

/** Counters since attach (monotonic) and two gauges; names are stable, see toPrometheus(). */
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
        { calls: 0, insights: 0, failed: 0, retries: 0, circuitRejected: 0, tokens: 0, circuit: 'closed' as CircuitState },
      ]),
    ),
  }
}

const GAUGES = new Set(['queueDepth', 'openWindows'])
const snake = (k: string) => k.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()

/** Prometheus text exposition: gatehouse_ai_<counter>_total, gauges, and per-provider series. */
export function toPrometheus(stats: AiBridgeStats, prefix = 'gatehouse_ai_'): string {
  const lines: string[] = []
  for (const [k, v] of Object.entries(stats)) {
    if (typeof v !== 'number') continue
    const name = `${prefix}${snake(k)}${GAUGES.has(k) ? '' : '_total'}`
    lines.push(`# TYPE ${name} ${GAUGES.has(k) ? 'gauge' : 'counter'}`, `${name} ${v}`)
  }
  const providerCounters = ['calls', 'insights', 'failed', 'retries', 'circuitRejected', 'tokens'] as const
  for (const c of providerCounters) {
    const name = `${prefix}provider_${snake(c)}_total`
    lines.push(`# TYPE ${name} counter`)
    for (const [p, s] of Object.entries(stats.providers)) lines.push(`${name}{provider="${p}"} ${s[c]}`)
  }
  const open = `${prefix}provider_circuit_open`
  lines.push(`# TYPE ${open} gauge`)
  for (const [p, s] of Object.entries(stats.providers)) lines.push(`${open}{provider="${p}"} ${s.circuit === 'closed' ? 0 : 1}`)
  return `${lines.join('\n')}\n`
}
