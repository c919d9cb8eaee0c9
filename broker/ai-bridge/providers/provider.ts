import type { InsightAnomaly } from '../bridge-deps.ts'

/** One telemetry message, redacted, as providers get it. */
export interface TelemetrySample {
  /** ISO 8601: when the broker accepted it */
  at: string
  /** levels below devices/{id}/telemetry, joined with '/'; '' for the topic itself */
  subtopic: string
  data: Record<string, unknown>
}

export interface InsightRequest {
  deviceId: string
  model: string
  /** the group's template rendered with redacted variables */
  prompt: string
  /** the window's samples, oldest first, redacted */
  telemetry: TelemetrySample[]
  /** settings are redacted too; the webhook provider does not send them */
  context: { tier: string; group: string | null; settings: Record<string, unknown> }
}

export interface ProviderResult {
  summary: string
  anomalies: InsightAnomaly[]
  usage: { promptTokens: number; completionTokens: number; totalTokens: number }
}

/**
 * A source of insights. Failures throw coded errors (GH_AI_PROVIDER_FAILED / _TIMEOUT) carrying
 * `retryable` and, from a Retry-After header, `retryAfterMs`; the bridge does retries and the breaker.
 */
export interface InsightProvider {
  readonly name: string
  /** the model used when neither the tier nor the device names one */
  readonly defaultModel: string
  analyze(request: InsightRequest, signal?: AbortSignal): Promise<ProviderResult>
}

/** What the retry loop reads from a failure. */
export interface FailureInfo {
  retryable?: boolean
  retryAfterMs?: number
  status?: number
}

export const NO_USAGE = Object.freeze({ promptTokens: 0, completionTokens: 0, totalTokens: 0 })

/** Turns a provider's anomalies (strings or objects) into the insight format, bounded. */
export function toAnomalies(value: unknown, max = 50): InsightAnomaly[] {
  if (!Array.isArray(value)) return []
  const out: InsightAnomaly[] = []
  for (const a of value.slice(0, max)) {
    if (typeof a === 'string' && a.trim()) out.push({ kind: 'model', message: a.trim().slice(0, 1000) })
    else if (a && typeof a === 'object') {
      const o = a as Record<string, unknown>
      const message = [o.message, o.description, o.detail, o.summary].find((v) => typeof v === 'string')
      if (typeof message !== 'string') continue
      out.push({
        kind: 'model',
        ...(typeof o.metric === 'string' && { metric: o.metric.slice(0, 200) }),
        ...(typeof o.value === 'number' && Number.isFinite(o.value) && { value: o.value }),
        message: message.slice(0, 1000),
      })
    }
  }
  return out
}
