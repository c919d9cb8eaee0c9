import { signedHeaders } from '../../../certs/index.ts'
import type { WebhookProviderOptions } from '../options.ts'
import { postJson, providerFailure, type HttpDeps } from './http.ts'
import { NO_USAGE, toAnomalies, type InsightProvider } from './provider.ts'

/**
 * POSTs the insight request as JSON to a URL the operator runs:
 *   body    { deviceId, model, prompt, telemetry, context: { tier, group }, timestamp }
 *   headers X-Gatehouse-Timestamp: <unix seconds>   (also in the body, so the signature covers it)
 *           X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>
 * and expects { summary: string, anomalies?: (string | {message, metric?, value?})[],
 * usage?: { promptTokens, completionTokens, totalTokens } }. The device's settings are not sent.
 */

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0)

export function createWebhookProvider(options: WebhookProviderOptions, secret: string, deps: HttpDeps): InsightProvider {
  return {
    name: 'webhook',
    defaultModel: options.model,
    async analyze(request, signal) {
      const timestamp = Math.floor(deps.clock.now().getTime() / 1000)
      const body = JSON.stringify({
        deviceId: request.deviceId,
        model: request.model,
        prompt: request.prompt,
        telemetry: request.telemetry,
        context: { tier: request.context.tier, group: request.context.group },
        timestamp,
      })
      const headers = signedHeaders(secret, body, timestamp)
      const answer = (await postJson(
        'webhook',
        options.url,
        body,
        headers,
        { timeoutMs: options.timeoutMs, maxResponseBytes: options.maxResponseBytes, ...(signal && { signal }) },
        deps,
      )) as {
        summary?: unknown
        anomalies?: unknown
        usage?: { promptTokens?: unknown; completionTokens?: unknown; totalTokens?: unknown }
      } | null
      if (typeof answer?.summary !== 'string') throw providerFailure('webhook', 'the answer has no "summary" string')
      const u = answer.usage
      const usage = u
        ? {
            promptTokens: num(u.promptTokens),
            completionTokens: num(u.completionTokens),
            totalTokens: num(u.totalTokens) || num(u.promptTokens) + num(u.completionTokens),
          }
        : { ...NO_USAGE }
      return { summary: answer.summary.slice(0, 4000), anomalies: toAnomalies(answer.anomalies), usage }
    },
  }
}
