import type { Logger } from 'pino'
import { sleep, systemTimers, type Timers } from '../../certs/index.ts'
import { HealthCheckFailed, HealthCheckTimeout } from '../errors.ts'

/**
 * The health seam (docs/architecture.md, "Health"). A check is an async function that resolves when its
 * part of Gatehouse is well and throws a coded error when not; the error's code and message are what a
 * probe sees, so they say what failed and never anything secret. Each plane implements the checks for
 * what it owns (the control plane: database, CA, change feed, event loop; the broker: its listener) and
 * the composition root names them.
 */
export type HealthCheck = () => Promise<void>

/** Checks by name, reported in this order. */
export type HealthChecks = Readonly<Record<string, HealthCheck>>

export type CheckResult = { status: 'ok' } | { status: 'failed'; code: string; reason: string }

export interface HealthReport {
  /** 'failed' when any check failed */
  status: 'ok' | 'failed'
  checks: Record<string, CheckResult>
}

export interface Health {
  /** GET /healthz: the process is alive and its event loop answers */
  liveness(): Promise<HealthReport>
  /** GET /readyz: it can serve (database writable, CA usable, MQTT listener accepting, change feed moving) */
  readiness(): Promise<HealthReport>
}

export interface HealthOptions {
  /** a check that has not answered by then fails with GH_HEALTH_TIMEOUT; default 2000 ms */
  timeoutMs?: number
  /**
   * A report is reused for this long, and concurrent requests share one run; default 1000 ms. The routes
   * are public: without this, anyone reaching the port could make the registry write on every request.
   */
  cacheMs?: number
}

export const DEFAULT_HEALTH_TIMEOUT_MS = 2000
export const DEFAULT_HEALTH_CACHE_MS = 1000

export function createHealth(
  checks: { liveness: HealthChecks; readiness: HealthChecks },
  deps: { log: Logger; timers?: Timers },
  options: HealthOptions = {},
): Health {
  const timers = deps.timers ?? systemTimers
  const timeoutMs = options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS
  const cacheMs = options.cacheMs ?? DEFAULT_HEALTH_CACHE_MS
  const run = (named: HealthChecks) => runChecks(named, { log: deps.log, timers, timeoutMs })
  return {
    liveness: shared(() => run(checks.liveness), timers, cacheMs),
    readiness: shared(() => run(checks.readiness), timers, cacheMs),
  }
}

/** Runs every check at once, each bounded by timeoutMs; never rejects. */
export async function runChecks(checks: HealthChecks, deps: { log: Logger; timers: Timers; timeoutMs: number }): Promise<HealthReport> {
  const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await runCheck(name, check, deps)] as const))
  const failed = entries.some(([, result]) => result.status === 'failed')
  return { status: failed ? 'failed' : 'ok', checks: Object.fromEntries(entries) }
}

async function runCheck(name: string, check: HealthCheck, deps: { log: Logger; timers: Timers; timeoutMs: number }): Promise<CheckResult> {
  const abort = new AbortController()
  const timeout = sleep(deps.timers, deps.timeoutMs, abort.signal).then(() => {
    throw new HealthCheckTimeout(name, deps.timeoutMs)
  })
  try {
    await Promise.race([check(), timeout])
    return { status: 'ok' }
  } catch (err) {
    const coded = isCoded(err) ? err : new HealthCheckFailed(name, { cause: err })
    deps.log.warn({ check: name, code: coded.code, err }, 'health check failed')
    return { status: 'failed', code: coded.code, reason: coded.message }
  } finally {
    abort.abort()
    timeout.catch(() => {}) // aborted, or lost the race
  }
}

function isCoded(err: unknown): err is Error & { code: string } {
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('GH_')
}

/** One run at a time, its report reused for cacheMs after it ends. */
function shared(run: () => Promise<HealthReport>, timers: Timers, cacheMs: number): () => Promise<HealthReport> {
  let current: Promise<HealthReport> | undefined
  return () => {
    if (current) return current
    const running = run()
    current = running
    const expire = () => {
      if (current === running) current = undefined
    }
    void running.then(() => timers.setTimeout(expire, cacheMs))
    return running
  }
}
