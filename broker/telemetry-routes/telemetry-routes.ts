import type { Logger } from 'pino'
import { cryptoRandom, createEventThrottle, sleep, systemTimers, type Clock, type Random, type Timers } from '../../certs/index.ts'
import { createRedactor, redactionRuleFor, type Redactor } from '../ai-bridge/redact.ts'
import type { AiBridgeOptions } from '../ai-bridge/options.ts'
import type { DeviceAiContext } from '../ai-bridge/bridge-deps.ts'
import { backoffDelay, randomFraction } from '../ai-bridge/retry.ts'
import { parseTelemetry } from '../ai-bridge/telemetry.ts'
import type { MqttCore } from '../create-mqtt-core.ts'
import type { ControlEvent } from '../device-directory.ts'
import { createHttpAgents } from '../http-post.ts'
import { DeliveryFailed, deliverBatch, type RoutedMessage } from './deliver.ts'
import { resolveTelemetryRoutesOptions, type TelemetryRoutesOptions } from './options.ts'

/** A route as the registry holds it (the control plane's record matches this structurally). */
export interface TelemetryRoute {
  id: string
  url: string
  /** null: the whole fleet */
  group: string | null
  /** the HMAC key of X-Gatehouse-Signature */
  secret: string
  batchSize: number
  batchMs: number
  queueMax: number
  /** redact each message with the AI bridge's redaction rule for the device's group */
  redact: boolean
  /** skip devices whose settings say ai.consent: false */
  consent: boolean
}

/** What the routes ask of the control plane (docs/conventions.md §3). */
export interface TelemetryRoutesDeps {
  clock: Clock
  log: Logger
  /** every route in the registry (read at attach and on each route.changed event) */
  routes(): TelemetryRoute[] | Promise<TelemetryRoute[]>
  /** the control plane's events: route.changed reloads the routes */
  onEvent(listener: (event: ControlEvent) => void): () => void
  /** a device's group and settings (for consent, redaction, and its group when not connected here) */
  deviceContext(deviceId: string): Promise<DeviceAiContext | undefined> | DeviceAiContext | undefined
  /** the AI bridge's redaction rules (its configuration's `redaction`), applied per group */
  redaction: Pick<AiBridgeOptions, 'redaction'>
  timers?: Timers
  random?: Random
  resolve?(host: string): Promise<string[]>
}

/** Counters of one route (and, summed, of all): plain numbers read at scrape time (docs/conventions.md §33). */
export interface RouteCounters {
  /** messages of the route's devices handed to it */
  received: number
  /** dropped because the route's queue was full */
  overflow: number
  delivered: number
  batches: number
  retries: number
  /** messages in batches the receiver refused (4xx) or that could not be sent (refused target) */
  failed: number
  /** not JSON, or the device said ai.consent: false (with consent on), or no longer in the group */
  skipped: number
}

export interface RouteStatus extends RouteCounters {
  id: string
  /** waiting in the queue now */
  queued: number
  lastDeliveryAt: string | null
  lastError: string | null
}

export interface TelemetryRoutes {
  status(id: string): RouteStatus | undefined
  /** all routes' counters summed, for /metrics */
  stats(): RouteCounters
  /** resolves when every route's queue is empty and nothing is in flight (tests, shutdown) */
  idle(): Promise<void>
  detach(): void
}

interface Queued {
  deviceId: string
  payload: Buffer
  subtopic: readonly string[]
  at: Date
}

interface RouteState {
  route: TelemetryRoute
  queue: Queued[]
  counters: RouteCounters
  timer: unknown
  sending: boolean
  stop: AbortController
  lastDeliveryAt: string | null
  lastError: string | null
}

const zero = (): RouteCounters => ({ received: 0, overflow: 0, delivered: 0, batches: 0, retries: 0, failed: 0, skipped: 0 })
const BASE_BACKOFF_MS = 250
/** connections to one receiver's origin: each route has one batch in flight, so routes sharing an origin share these */
const ROUTE_SOCKETS_PER_ORIGIN = 16

/**
 * Telemetry routes (docs/architecture.md, "Telemetry routes"):
 *
 *   devices/{id}/telemetry[/...] -> each route of the fleet or of the device's group: a bounded queue
 *   (O(1) push; full: counted as overflow) -> a batch (batchSize messages, or batchMs after its first)
 *   -> JSON? consent? redact -> signed POST (timeout) -> 5xx/429/timeout: retry with back-off (or the
 *   answer's Retry-After, capped at maxBackoffMs), the queue filling meanwhile; 2xx: delivered, whatever
 *   the body; another 4xx: failed (dropped, counted), next batch.
 *
 * One batch per route is in flight at a time, so a route delivers in order. A device's group at the
 * hand-off is its live session's (which follows a move, device-limits.ts); a route re-checks it (and
 * consent) when the batch is built.
 */
export function attachTelemetryRoutes(
  core: Pick<MqttCore, 'onDevicePublish' | 'connection'>,
  deps: TelemetryRoutesDeps,
  input: Partial<TelemetryRoutesOptions> = {},
): TelemetryRoutes {
  const options = resolveTelemetryRoutesOptions(input)
  const log = deps.log.child({ module: 'broker.routes' })
  const timers = deps.timers ?? systemTimers
  const random = deps.random ?? cryptoRandom
  const agents = createHttpAgents(ROUTE_SOCKETS_PER_ORIGIN)
  const deliverDeps = {
    agents,
    timers,
    clock: deps.clock,
    ...(deps.resolve && { resolve: deps.resolve }),
  }
  const logThrottle = createEventThrottle({ intervalMs: 60_000, maxKeys: 1000 }, deps.clock)
  const states = new Map<string, RouteState>()
  const redactors = new Map<string, Redactor>()
  const totals = zero()
  let idleWaiters: (() => void)[] = []
  let detached = false

  // --- hand-off: O(routes) with routes bounded by maxRoutes; never waits, never throws ---------------
  const offPublish = core.onDevicePublish((m) => {
    if (m.kind !== 'telemetry' || states.size === 0) return
    const group = core.connection(m.deviceId)?.group ?? null
    for (const s of states.values()) {
      if (s.route.group !== null && s.route.group !== group) continue
      s.counters.received++
      totals.received++
      if (s.queue.length >= s.route.queueMax) {
        s.counters.overflow++
        totals.overflow++
        continue
      }
      s.queue.push({ deviceId: m.deviceId, payload: m.payload, subtopic: m.subtopic, at: deps.clock.now() })
      if (s.queue.length >= s.route.batchSize) kick(s)
      else if (s.timer === undefined && !s.sending) s.timer = timers.setTimeout(() => kick(s, true), s.route.batchMs)
    }
  })

  function kick(s: RouteState, due = false): void {
    if (s.timer !== undefined) {
      timers.clearTimeout(s.timer)
      s.timer = undefined
    }
    if (s.sending || s.stop.signal.aborted || s.queue.length === 0) return settle()
    if (!due && s.queue.length < s.route.batchSize) return
    s.sending = true
    void send(s).finally(() => {
      s.sending = false
      if (s.stop.signal.aborted) return settle()
      if (s.queue.length >= s.route.batchSize) kick(s)
      else if (s.queue.length > 0) s.timer = timers.setTimeout(() => kick(s, true), s.route.batchMs)
      else settle()
    })
  }

  function redactorFor(group: string | null): Redactor {
    const key = group ?? ''
    let r = redactors.get(key)
    if (!r) {
      r = createRedactor(redactionRuleFor(deps.redaction, group))
      if (redactors.size < 10_000) redactors.set(key, r)
    }
    return r
  }

  async function build(s: RouteState, batch: Queued[]): Promise<RoutedMessage[]> {
    const out: RoutedMessage[] = []
    const needsContext = s.route.consent || s.route.redact || s.route.group !== null
    for (const q of batch) {
      const data = parseTelemetry(q.payload, q.subtopic)
      const ctx = data && needsContext ? await deps.deviceContext(q.deviceId) : undefined
      const consented = !s.route.consent || (ctx?.settings.ai as { consent?: unknown } | undefined)?.consent !== false
      const inGroup = s.route.group === null || ctx?.group === s.route.group
      if (data === undefined || (needsContext && ctx === undefined) || !consented || !inGroup) {
        s.counters.skipped++
        totals.skipped++
        continue
      }
      const shown = s.route.redact ? (redactorFor(ctx?.group ?? null)(data) as Record<string, unknown>) : data
      out.push({ deviceId: q.deviceId, subtopic: q.subtopic.join('/'), at: q.at.toISOString(), data: shown })
    }
    return out
  }

  async function send(s: RouteState): Promise<void> {
    const batch = s.queue.splice(0, s.route.batchSize)
    try {
      const messages = await build(s, batch)
      if (messages.length === 0) return
      for (let retry = 0; ; retry++) {
        try {
          await deliverBatch(
            s.route,
            messages,
            { timeoutMs: options.timeoutMs, allowPrivateTargets: options.allowPrivateTargets, signal: s.stop.signal },
            deliverDeps,
          )
          s.counters.delivered += messages.length
          totals.delivered += messages.length
          s.counters.batches++
          totals.batches++
          s.lastDeliveryAt = deps.clock.now().toISOString()
          s.lastError = null
          return
        } catch (err) {
          if (s.stop.signal.aborted) return
          const message = err instanceof Error ? err.message : String(err)
          s.lastError = message
          if (!(err instanceof DeliveryFailed) || !err.retryable) {
            s.counters.failed += messages.length
            totals.failed += messages.length
            warn(s, { err: message, messages: messages.length }, 'telemetry route batch refused; dropped')
            return
          }
          s.counters.retries++
          totals.retries++
          warn(s, { err: message, retry: retry + 1 }, 'telemetry route delivery failed; retrying')
          // a 429's or 503's Retry-After is waited out (up to maxBackoffMs) when longer than the back-off
          const delay = Math.max(
            backoffDelay(retry, { max: 0, baseDelayMs: BASE_BACKOFF_MS, maxDelayMs: options.maxBackoffMs }, randomFraction(random)),
            Math.min(err.retryAfterMs ?? 0, options.maxBackoffMs),
          )
          await sleep(timers, delay, s.stop.signal).catch(() => {})
          if (s.stop.signal.aborted) return
        }
      }
    } catch (err) {
      s.lastError = err instanceof Error ? err.message : String(err)
      warn(s, { err }, 'telemetry route could not build a batch')
    }
  }

  function warn(s: RouteState, fields: Record<string, unknown>, msg: string): void {
    const hit = logThrottle.hit(`${s.route.id}:${msg}`)
    if (hit.emit) log.warn({ routeId: s.route.id, ...fields, suppressed: hit.suppressed }, msg)
  }

  function settle(): void {
    if ([...states.values()].some((s) => s.sending || (s.queue.length > 0 && !s.stop.signal.aborted))) return
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  function drop(s: RouteState): void {
    s.stop.abort()
    if (s.timer !== undefined) timers.clearTimeout(s.timer)
    s.queue.length = 0
  }

  /** Keeps the state (queue, counters) of a route whose record did not change; replaces a changed one. */
  function apply(routes: TelemetryRoute[]): void {
    const next = new Map(routes.slice(0, options.maxRoutes).map((r) => [r.id, r]))
    for (const [id, s] of states) {
      const r = next.get(id)
      if (r && JSON.stringify(r) === JSON.stringify(s.route)) continue
      drop(s)
      states.delete(id)
    }
    for (const [id, route] of next) {
      if (states.has(id)) continue
      states.set(id, {
        route,
        queue: [],
        counters: zero(),
        timer: undefined,
        sending: false,
        stop: new AbortController(),
        lastDeliveryAt: null,
        lastError: null,
      })
    }
    settle()
  }

  let loading: Promise<void> = Promise.resolve()
  const reload = () => {
    loading = loading.then(async () => {
      if (detached) return
      try {
        apply(await deps.routes())
      } catch (err) {
        log.error({ err }, 'could not read the telemetry routes; keeping the ones loaded')
      }
    })
  }
  reload()
  const offEvents = deps.onEvent((e) => {
    if (e.type === 'route.changed') reload()
  })

  return {
    status(id) {
      const s = states.get(id)
      if (!s) return undefined
      return { id, ...s.counters, queued: s.queue.length, lastDeliveryAt: s.lastDeliveryAt, lastError: s.lastError }
    },
    stats: () => ({ ...totals }),
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve)
        settle()
      }),
    detach() {
      detached = true
      for (const off of [offPublish, offEvents]) off()
      for (const s of states.values()) drop(s)
      states.clear()
      agents.destroy()
      settle()
    },
  }
}
