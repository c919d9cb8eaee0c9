import type { Clock } from '../../certs/index.ts'
import { AiCircuitOpen } from '../errors.ts'

export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitBreaker {
  state(): CircuitState
  /**
   * Runs `fn` unless the circuit is open (then throws GH_AI_CIRCUIT_OPEN at once, not retryable).
   * After the cool-down (read from the clock) one trial call goes through: success closes the
   * circuit, failure opens it for another cool-down. `counts(err)` false leaves the count alone
   * (the bridge being detached is not the provider's failure).
   */
  run<T>(fn: () => Promise<T>, counts?: (err: unknown) => boolean): Promise<T>
}

export function createCircuitBreaker(name: string, options: { failures: number; cooldownMs: number }, clock: Clock): CircuitBreaker {
  let failures = 0
  let openedAt: number | null = null
  let trialInFlight = false

  function state(): CircuitState {
    if (openedAt === null) return 'closed'
    return clock.now().getTime() - openedAt >= options.cooldownMs ? 'half-open' : 'open'
  }

  return {
    state,
    async run(fn, counts = () => true) {
      const s = state()
      if (s === 'open' || (s === 'half-open' && trialInFlight)) {
        const until = new Date((openedAt ?? 0) + options.cooldownMs).toISOString()
        throw Object.assign(new AiCircuitOpen(name, options.failures, until), { retryable: false })
      }
      const trial = s === 'half-open'
      if (trial) trialInFlight = true
      try {
        const result = await fn()
        failures = 0
        openedAt = null
        return result
      } catch (err) {
        if (counts(err)) {
          failures++
          if (trial || failures >= options.failures) openedAt = clock.now().getTime()
        }
        throw err
      } finally {
        if (trial) trialInFlight = false
      }
    },
  }
}
