import { createEventThrottle, cryptoRandom, systemTimers } from '../../certs/index.ts'
import type { MqttCore } from '../create-mqtt-core.ts'
import { createHttpAgents } from '../http-post.ts'
import { insightsTopic } from '../topics.ts'
import type { AiBridgeDeps, DeviceAiContext, Insight, ThrottleNotice } from './bridge-deps.ts'
import { createCircuitBreaker, type CircuitBreaker } from './circuit-breaker.ts'
import { createFairQueue } from './fair-queue.ts'
import { resolveAiBridgeOptions, type AiBridgeOptions, type AiBridgeOptionsInput, type ProviderName } from './options.ts'
import { createProviders } from './providers/create-providers.ts'
import { createProviderCall } from './provider-call.ts'
import type { InsightProvider, InsightRequest, TelemetrySample } from './providers/provider.ts'
import { createDeviceLimiter } from './rate-limiter.ts'
import { createRedactor, redactionRuleFor, type Redactor } from './redact.ts'
import { routeFor, type Route } from './routing.ts'
import { emptyStats, type AiBridgeStats } from './stats.ts'
import { parseTelemetry } from './telemetry.ts'
import { renderTemplate } from './template.ts'

export interface AiBridge {
  /** Stops taking telemetry, drops what waits and open windows, aborts provider calls; resolves when no job runs. */
  detach(): Promise<void>
  stats(): AiBridgeStats
  /** Resolves when nothing waits in the queue and no job runs (open windows aside). For tests and shutdown. */
  idle(): Promise<void>
  /** Settles the daily budgets with the UsageLedger now (as every usageFlushSeconds and on detach). */
  flushUsage(): Promise<void>
}

/** The part of the MQTT core the bridge uses. */
export type AiBridgeCore = Pick<MqttCore, 'onDevicePublish' | 'publishToDevice' | 'isConnected'>

/** A telemetry message as the hand-off takes it; parsed once, when it is known to be needed */
interface Raw {
  payload: Buffer
  subtopic: readonly string[]
  /** ms, DevicePublish.receivedAtMs */
  at: number
  /** the parsed telemetry, once parsed */
  data?: Record<string, unknown>
  /** the message that re-checks a throttled device's limits */
  probe?: true
}

/** A device in a throttle episode, as the hand-off sees it */
interface Throttled {
  /** until when (ms) its telemetry is counted as throttled without any work */
  until: number
  tier: string
  /**
   * a probe re-checks the limits: this many messages that came after it were queued behind it (at most
   * windowing.messages: what the probe's window could take, and one to ask for the next admission)
   */
  followers?: number
}

type Job = ({ kind: 'telemetry' } & Raw) | { kind: 'flush'; window: Window }

interface Window {
  /** joined raw (the hand-off adds to an open window without a job), parsed and redacted at flush */
  samples: Raw[]
  day: string
  route: Route
  timer: unknown
  /** a flush job is queued: later telemetry goes through the queue behind it */
  flushQueued: boolean
}

/**
 * How long the hand-off counts a throttled device's telemetry as throttled without any work, at most. Then
 * one message (the probe) re-checks the limits, and of what follows while it waits for its answer, only as
 * many messages as a window can take are queued behind it: the rest is counted as throttled, as before
 * (not one job per message of a flood, nor a full queue, drops and warnings). A probe not answered within
 * another THROTTLE_RECHECK_MS is followed by another.
 */
const THROTTLE_RECHECK_MS = 1000

class BridgeDetached extends Error {
  override name = 'AbortError'
}

/**
 * The AI telemetry bridge (docs/architecture.md, docs/ai-bridge.md):
 *
 *   devices/{id}/telemetry[/...] -> fair queue (O(1) hand-off; full: dropped) -> per device, in order:
 *   JSON? -> consent -> open window? join it : (daily budget + token bucket -> throttled: one notice per
 *   episode) -> redact -> window (N messages or T seconds) -> route (tier, override) -> template ->
 *   provider (timeout, retries, circuit breaker) -> usage.add -> insights.append -> devices/{id}/insights
 *
 * One provider request is admitted (and counted against the limits) when a message opens a window;
 * messages that join an open window ride along.
 */
export function attachAiBridge(
  core: AiBridgeCore,
  deps: AiBridgeDeps,
  input: AiBridgeOptionsInput | Readonly<AiBridgeOptions> = {},
): AiBridge {
  const options = resolveAiBridgeOptions(input)
  const log = deps.log.child({ module: 'broker.ai' })
  const clock = deps.clock
  const timers = deps.timers ?? systemTimers
  const random = deps.random ?? cryptoRandom
  // as many connections to a provider as requests may be in flight to it
  const agents = createHttpAgents(options.concurrency)
  const http = { agents, timers, clock }
  const providers = createProviders(options, { ...http, ...(deps.secret && { secret: deps.secret }) })
  const stats = emptyStats([...providers.keys()])
  const queue = createFairQueue<Job>({ maxTotal: options.queue.maxMessages, maxPerKey: options.queue.perDevice })
  const limiter = createDeviceLimiter({ clock, usage: deps.usage }, options)
  const logThrottle = createEventThrottle({ intervalMs: options.logIntervalMs, maxKeys: 1000 }, clock)
  const redactors = new Map<string, Redactor>()
  const windows = new Map<string, Window>()
  /** device -> its throttle episode, as the hand-off counts it */
  const throttledUntil = new Map<string, Throttled>()
  const closing = new AbortController()
  /** closing.signal.aborted, as a plain field for the hand-off (the AbortSignal getter costs ~40 ns a call) */
  let detached = false
  let active = 0
  let pumpScheduled = false
  let idleWaiters: (() => void)[] = []

  /** warn, at most once per logIntervalMs per key, with the count of what was suppressed */
  function warnBounded(key: string, fields: Record<string, unknown>, msg: string): void {
    const hit = logThrottle.hit(key)
    if (hit.emit) log.warn({ ...fields, suppressed: hit.suppressed }, msg)
  }

  const breakers = new Map<ProviderName, CircuitBreaker>(
    [...providers.keys()].map((p) => [p, createCircuitBreaker(p, options.circuitBreaker, clock)]),
  )
  const call = createProviderCall({
    breakers,
    stats,
    retries: options.retries,
    timers,
    random,
    clock,
    signal: closing.signal,
    log,
    warnBounded,
  })

  function redactorFor(group: string | null): Redactor {
    const key = group ?? ''
    let r = redactors.get(key)
    if (!r) {
      r = createRedactor(redactionRuleFor(options, group))
      if (redactors.size < 10_000) redactors.set(key, r)
    }
    return r
  }

  // --- hand-off: O(1), never throws, never waits ------------------------------------------------
  const off = core.onDevicePublish((m) => {
    if (m.kind !== 'telemetry' || detached) return
    stats.received++
    if (m.payload.length > options.maxTelemetryBytes) {
      stats.skipped++
      stats.skippedOversized++
      return
    }
    const at = m.receivedAtMs // the broker's one clock read of this packet
    let probe = false
    const throttled = throttledUntil.get(m.deviceId)
    if (throttled !== undefined) {
      if (at >= throttled.until) {
        // re-checked at least every THROTTLE_RECHECK_MS: this message asks (THROTTLE_RECHECK_MS above)
        throttled.until = at + THROTTLE_RECHECK_MS
        throttled.followers = 0
        probe = true
      } else if (throttled.followers !== undefined && throttled.followers < options.windowing.messages) {
        throttled.followers++ // behind the probe: joins its window if it is admitted, counted if not
      } else return countThrottled(throttled.tier) // within the episode: no parsing, no job
    }
    const w = windows.get(m.deviceId)
    if (w !== undefined && !w.flushQueued && queue.idle(m.deviceId)) {
      // joins the open window: no job, parsed and redacted at flush
      w.samples.push({ payload: m.payload, subtopic: m.subtopic, at })
      if (w.samples.length >= options.windowing.messages) queueFlush(m.deviceId, w)
      return
    }
    const job: Extract<Job, { kind: 'telemetry' }> = { kind: 'telemetry', payload: m.payload, subtopic: m.subtopic, at }
    if (probe) job.probe = true
    const r = queue.push(m.deviceId, job)
    if (r !== 'queued') {
      stats.dropped++
      warnBounded(
        'queue.full',
        { deviceId: m.deviceId, full: r === 'full' ? 'total' : 'device', dropped: stats.dropped },
        'ai bridge queue full; telemetry dropped',
      )
      return
    }
    schedulePump()
  })

  function countThrottled(tier: string): void {
    stats.throttled++
    stats.throttledByTier[tier] = (stats.throttledByTier[tier] ?? 0) + 1
  }

  /** at most one flush job per window: bounded */
  function queueFlush(deviceId: string, w: Window): void {
    if (w.flushQueued || windows.get(deviceId) !== w || closing.signal.aborted) return
    w.flushQueued = true
    queue.push(deviceId, { kind: 'flush', window: w }, true)
    schedulePump()
  }

  // --- write-behind of the daily budgets --------------------------------------------------------
  let flushTimer: unknown = null
  let flushing: Promise<void> = Promise.resolve()
  function flushUsage(): Promise<void> {
    flushing = flushing.then(() =>
      limiter.budgets.flush().catch((err) => {
        stats.errors++
        warnBounded('usage.flush', { err }, 'ai bridge could not record usage; kept for the next flush')
      }),
    )
    return flushing
  }
  function armFlush(): void {
    if (closing.signal.aborted) return // detached while a flush ran
    flushTimer = timers.setTimeout(() => {
      if (closing.signal.aborted) return
      void flushUsage().finally(armFlush)
    }, options.usageFlushSeconds * 1000)
  }
  armFlush()

  function schedulePump(): void {
    if (pumpScheduled) return
    pumpScheduled = true
    queueMicrotask(pump)
  }

  function pump(): void {
    pumpScheduled = false
    while (active < options.concurrency && !closing.signal.aborted) {
      const next = queue.take()
      if (!next) break
      active++
      void run(next.key, next.item).finally(() => {
        active--
        queue.release(next.key)
        pump()
        settleIdle()
      })
    }
    settleIdle()
  }

  function settleIdle(): void {
    if (active > 0 || (queue.size() > 0 && !closing.signal.aborted)) return
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  async function run(deviceId: string, job: Job): Promise<void> {
    try {
      if (job.kind === 'flush') await flush(deviceId, job.window)
      else await admit(deviceId, job)
    } catch (err) {
      if (err instanceof BridgeDetached) return
      stats.errors++
      warnBounded('job.failed', { deviceId, err }, 'ai bridge could not handle telemetry')
    }
  }

  async function contextOf(deviceId: string): Promise<DeviceAiContext | undefined> {
    const ctx = await deps.deviceContext(deviceId)
    if (ctx === undefined) stats.skippedUnknownDevice++
    return ctx
  }

  const consents = (ctx: DeviceAiContext) => (ctx.settings.ai as { consent?: unknown } | undefined)?.consent !== false

  // --- per device, in order ---------------------------------------------------------------------
  function skippedInvalid(deviceId: string): void {
    stats.skipped++
    stats.skippedInvalid++
    log.debug({ deviceId }, 'telemetry is not JSON; skipped')
  }

  async function admit(deviceId: string, job: Extract<Job, { kind: 'telemetry' }>): Promise<void> {
    // queued before the device's throttle episode began: counted like the hand-off counts it
    const throttled = throttledUntil.get(deviceId)
    if (throttled !== undefined && job.at < throttled.until && job.probe !== true) return countThrottled(throttled.tier)
    const ctx = await contextOf(deviceId)
    if (ctx === undefined) return void stats.skipped++
    // consent before parsing: a device that does not consent costs no JSON work
    if (!consents(ctx)) {
      stats.noConsent++
      const w = windows.get(deviceId)
      if (w) dropWindow(deviceId, w)
      return
    }
    const open = windows.get(deviceId)
    if (open && !open.flushQueued) {
      open.samples.push({ payload: job.payload, subtopic: job.subtopic, at: job.at })
      if (open.samples.length >= options.windowing.messages) await flush(deviceId, open)
      return
    }
    const data = parseTelemetry(job.payload, job.subtopic)
    if (data === undefined) {
      // a probe that is not JSON answers nothing: the messages behind it re-check the limits themselves
      if (job.probe === true) throttledUntil.delete(deviceId)
      return skippedInvalid(deviceId)
    }
    const route = routeFor(options, deviceId, ctx.tier)
    const decision = await limiter.admit(deviceId, { ...route.limits, ...(await deps.limitsOf?.(deviceId)) })
    if (!decision.ok) {
      countThrottled(ctx.tier)
      const until = Math.min(decision.retryAt.getTime(), clock.now().getTime() + THROTTLE_RECHECK_MS)
      throttledUntil.delete(deviceId)
      if (throttledUntil.size >= options.maxTrackedDevices) throttledUntil.delete(throttledUntil.keys().next().value as string)
      throttledUntil.set(deviceId, { until, tier: ctx.tier })
      if (limiter.startsEpisode(deviceId, decision.retryAt)) {
        const notice: ThrottleNotice = { type: 'throttled', deviceId, reason: decision.reason, retryAt: decision.retryAt.toISOString() }
        stats.throttleNotices++
        log.info({ deviceId, reason: decision.reason, retryAt: notice.retryAt }, 'ai bridge throttled a device')
        await publish(deviceId, notice)
      }
      return
    }
    limiter.endEpisode(deviceId)
    throttledUntil.delete(deviceId) // a probe was admitted: the hand-off takes the device's telemetry again
    const w: Window = { samples: [{ ...job, data }], day: decision.day, route, timer: null, flushQueued: false }
    windows.set(deviceId, w)
    if (w.samples.length >= options.windowing.messages) return flush(deviceId, w)
    w.timer = timers.setTimeout(() => queueFlush(deviceId, w), options.windowing.seconds * 1000)
  }

  /** The window's telemetry, parsed (once) and redacted; what is not JSON is counted and left out */
  function samplesOf(deviceId: string, w: Window, redact: Redactor): TelemetrySample[] {
    const out: TelemetrySample[] = []
    // a flood's messages share their millisecond: one ISO string per distinct time, not per message
    let lastAt = Number.NaN
    let lastIso = ''
    for (const raw of w.samples) {
      const data = raw.data ?? parseTelemetry(raw.payload, raw.subtopic)
      if (data === undefined) {
        skippedInvalid(deviceId)
        continue
      }
      if (raw.at !== lastAt) {
        lastAt = raw.at
        lastIso = new Date(raw.at).toISOString()
      }
      out.push({
        at: lastIso,
        subtopic: raw.subtopic.length === 0 ? '' : raw.subtopic.join('/'),
        data: redact(data) as Record<string, unknown>,
      })
    }
    return out
  }

  function closeWindow(deviceId: string, w: Window): void {
    if (windows.get(deviceId) === w) windows.delete(deviceId)
    if (w.timer !== null) timers.clearTimeout(w.timer)
  }

  /** A window closed without a provider call: its admitted request goes back to the budget */
  function dropWindow(deviceId: string, w: Window): void {
    closeWindow(deviceId, w)
    limiter.budgets.giveBack(deviceId, w.day)
  }

  async function flush(deviceId: string, w: Window): Promise<void> {
    if (windows.get(deviceId) !== w) return // already flushed by count, or dropped
    closeWindow(deviceId, w)
    // settings may have changed while the window was open (consent withdrawn): ask again
    const ctx = await contextOf(deviceId)
    if (ctx === undefined) {
      limiter.budgets.giveBack(deviceId, w.day)
      return void stats.skipped++
    }
    if (!consents(ctx)) {
      limiter.budgets.giveBack(deviceId, w.day)
      return void stats.noConsent++
    }
    const provider = providers.get(w.route.provider) as InsightProvider
    const model = w.route.model ?? provider.defaultModel
    const redact = redactorFor(ctx.group)
    const samples = samplesOf(deviceId, w, redact)
    const settings = redact(ctx.settings) as Record<string, unknown>
    const variables = {
      device: { id: deviceId, tier: ctx.tier, group: ctx.group ?? '' },
      group: ctx.group ?? '',
      tier: ctx.tier,
      settings,
      telemetry: samples,
      latest: samples.at(-1)?.data ?? {},
      count: samples.length,
      model,
    }
    const template =
      (ctx.group !== null && Object.hasOwn(options.templates.groups, ctx.group) ? options.templates.groups[ctx.group] : undefined) ??
      options.templates.default
    let prompt: string | undefined
    const request: InsightRequest = {
      deviceId,
      model,
      // rendered when a provider reads it, once: the local analyzer does not
      get prompt() {
        prompt ??= renderTemplate(template, variables)
        return prompt
      },
      telemetry: samples,
      context: { tier: ctx.tier, group: ctx.group, settings },
    }
    const { result, calls } = await call(w.route.provider, provider, request)
    if (calls > 0) {
      stats.forwarded += samples.length
      limiter.budgets.spend(deviceId, w.day, result?.usage.totalTokens ?? 0)
    } else limiter.budgets.giveBack(deviceId, w.day) // refused by an open circuit: not charged
    if (!result || closing.signal.aborted) return
    const insight: Insight = {
      type: 'insight',
      id: newId(),
      deviceId,
      provider: provider.name,
      model,
      summary: result.summary,
      anomalies: result.anomalies,
      at: clock.now().toISOString(),
      usage: { requests: 1, ...result.usage },
    }
    try {
      await deps.insights.append(insight)
    } catch (err) {
      stats.errors++
      warnBounded('insights.append', { deviceId, err }, 'ai bridge could not store an insight')
    }
    stats.insights++
    ;(stats.providers[provider.name] as AiBridgeStats['providers'][string]).insights++
    await publish(deviceId, insight)
  }

  async function publish(deviceId: string, message: Insight | ThrottleNotice): Promise<void> {
    if (!core.isConnected(deviceId)) return
    try {
      await core.publishToDevice(insightsTopic(deviceId), JSON.stringify(message), { qos: 1 })
    } catch (err) {
      warnBounded('publish', { deviceId, err }, 'ai bridge could not publish to a device')
    }
  }

  /** insight ids: 16 random bytes each, drawn 64 ids at a time (one call into the CSPRNG, not one per insight) */
  let idPool = Buffer.alloc(0)
  let idNext = 0
  function newId(): string {
    if (idNext + 16 > idPool.length) {
      idPool = Buffer.from(random.bytes(16 * 64))
      idNext = 0
    }
    idNext += 16
    return idPool.toString('hex', idNext - 16, idNext)
  }

  function snapshot(): AiBridgeStats {
    const out = structuredClone(stats)
    out.queueDepth = queue.size()
    out.openWindows = windows.size
    for (const [name, b] of breakers) (out.providers[name] as AiBridgeStats['providers'][string]).circuit = b.state()
    return out
  }

  function idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      idleWaiters.push(resolve)
      settleIdle()
    })
  }

  return {
    stats: snapshot,
    idle,
    flushUsage,
    async detach() {
      if (!closing.signal.aborted) {
        off()
        detached = true
        closing.abort(new BridgeDetached('the AI bridge was detached'))
        if (flushTimer !== null) timers.clearTimeout(flushTimer)
        for (const [id, w] of windows) dropWindow(id, w)
        queue.clear()
        const { providers: _providers, ...counters } = snapshot()
        log.debug(counters, 'ai bridge detached')
      }
      await idle()
      agents.destroy()
      await flushUsage() // the usage counted since the last flush, and the unspent leases back
    },
  }
}
