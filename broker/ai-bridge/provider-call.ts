import type { Logger } from 'pino'
import { observeHistogram, type Clock, type Random, type Timers } from '../../certs/index.ts'
import type { CircuitBreaker } from './circuit-breaker.ts'
import type { ProviderName, RetryOptionsShape } from './options.ts'
import type { InsightProvider, InsightRequest, ProviderResult } from './providers/provider.ts'
import { withRetries } from './retry.ts'
import type { AiBridgeStats, ProviderStats } from './stats.ts'

export interface ProviderCallDeps {
  breakers: Map<ProviderName, CircuitBreaker>
  stats: AiBridgeStats
  retries: RetryOptionsShape
  timers: Timers
  random: Random
  /** times each call for the provider's latency histogram */
  clock: Clock
  /** aborted when the bridge is detached: sleeps and HTTP calls stop, and nothing counts as a failure */
  signal: AbortSignal
  log: Logger
  warnBounded(key: string, fields: Record<string, unknown>, msg: string): void
}

/**
 * One provider request: each attempt goes through the provider's circuit breaker; retryable failures
 * (429, 5xx, timeouts, network) are retried with back-off. Never throws for a provider failure: it
 * answers `result: undefined` (counted as failed, logged at a bounded rate) and how many calls were
 * made. When the bridge is detached meanwhile it rethrows the abort.
 */
export function createProviderCall(deps: ProviderCallDeps) {
  return async function call(
    name: ProviderName,
    provider: InsightProvider,
    request: InsightRequest,
  ): Promise<{ result: ProviderResult | undefined; calls: number }> {
    const ps = deps.stats.providers[name] as ProviderStats
    const breaker = deps.breakers.get(name) as CircuitBreaker
    let calls = 0
    try {
      const result = await withRetries(
        () =>
          breaker.run(
            () => {
              calls++
              ps.calls++
              const started = deps.clock.now().getTime()
              return provider
                .analyze(request, deps.signal)
                .finally(() => observeHistogram(ps.latency, (deps.clock.now().getTime() - started) / 1000))
            },
            () => !deps.signal.aborted,
          ),
        {
          ...deps.retries,
          timers: deps.timers,
          random: deps.random,
          signal: deps.signal,
          onRetry: (err, delayMs, retry) => {
            ps.retries++
            deps.log.debug(
              { deviceId: request.deviceId, provider: name, code: (err as { code?: string }).code, delayMs, retry },
              'ai provider call retried',
            )
          },
        },
      )
      ps.tokens += result.usage.totalTokens
      const tier = request.context.tier
      deps.stats.tokensByTier[tier] = (deps.stats.tokensByTier[tier] ?? 0) + result.usage.totalTokens
      return { result, calls }
    } catch (err) {
      if (deps.signal.aborted) throw deps.signal.reason
      const code = (err as { code?: string }).code
      deps.stats.failed++
      ps.failed++
      if (code === 'GH_AI_CIRCUIT_OPEN') ps.circuitRejected++
      deps.warnBounded(
        `provider.failed:${name}:${code}`,
        { deviceId: request.deviceId, provider: name, code, status: (err as { status?: number }).status, err },
        'ai provider request failed',
      )
      return { result: undefined, calls }
    }
  }
}
