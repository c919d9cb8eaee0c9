import type { MqttClient } from 'mqtt'
import type { Timers } from '../certs/index.ts'
import {
  applySettings,
  alertMessage,
  createCrossingDetector,
  parseSettingsDocument,
  settingsReport,
  type AppliedSettings,
} from './device-settings.ts'
import { renewalNoticeTopic } from './enrollment.ts'
import type { DeviceBundle } from './fleet.ts'
import { describeError, endClient, openClient, parseBrokerUrl, type BrokerAddress } from './mqtt-session.ts'
import { createPublishQueue, type Outgoing } from './publish-queue.ts'
import { createRenewer, type RenewOutcome } from './renewer.ts'
import { createTelemetryModel, type RandomSource, type TelemetryReading } from './telemetry.ts'
import {
  realTimers,
  type DeviceStats,
  type InsightMessage,
  type SimEvent,
  type SimulatedDeviceDeps,
  type SimulatedDeviceOptions,
} from './device-types.ts'

export { realTimers, type DeviceStats, type InsightMessage, type SimEvent, type SimulatedDeviceDeps, type SimulatedDeviceOptions }

/**
 * One simulated device: what a real one does with nothing but its key, certificate, CA chain and the
 * broker's address. It connects over mutual TLS (clientId = its id), reconnects with exponential
 * back-off and jitter, publishes telemetry at its current interval, applies the settings it gets
 * (interval and thresholds change what it does) and reports them, counts the insights it gets, alerts
 * on threshold crossings, and renews its certificate over MQTT by itself (renewer.ts).
 */

export class SimulatedDevice {
  readonly deviceId: string
  private bundle: DeviceBundle
  private readonly broker: BrokerAddress
  private readonly opts: SimulatedDeviceOptions
  private readonly clock: { now(): Date }
  private readonly timers: Timers
  private readonly random: RandomSource
  private readonly emit: (event: SimEvent) => void
  private readonly model
  private readonly crossings = createCrossingDetector()
  private readonly queue
  private readonly renewer
  private readonly defaultIntervalMs: number
  private client: MqttClient | null = null
  private connected = false
  private running = false
  private everConnected = false
  private plannedReconnect = false
  private failures = 0
  private applied: AppliedSettings | null = null
  private telemetryTimer: unknown = null
  private reconnectTimer: unknown = null
  private waiters: ((ok: boolean) => void)[] = []
  private readonly counts = { settingsApplied: 0, insights: 0, throttled: 0, alerts: 0, reconnects: 0, errors: 0 }
  private lastError: string | null = null
  private readonly lastInsights: InsightMessage[] = []

  constructor(bundle: DeviceBundle, options: SimulatedDeviceOptions, deps: SimulatedDeviceDeps = {}) {
    this.deviceId = bundle.deviceId
    this.bundle = bundle
    this.opts = options
    this.broker = typeof options.broker === 'string' ? parseBrokerUrl(options.broker) : options.broker
    this.clock = deps.clock ?? { now: () => new Date() }
    this.timers = deps.timers ?? realTimers
    this.random = deps.random ?? Math.random
    this.emit = deps.onEvent ?? (() => {})
    const rate = options.ratePerSecond ?? 0.2
    if (!(rate > 0)) throw new RangeError(`ratePerSecond must be > 0, not ${rate}`)
    this.defaultIntervalMs = Math.max(1, Math.round(1000 / rate))
    this.model = createTelemetryModel(this.random, { ...(options.anomalyRate !== undefined && { anomalyRate: options.anomalyRate }) })
    this.queue = createPublishQueue({ ...(options.maxQueued !== undefined && { maxQueued: options.maxQueued }) })
    this.renewer = createRenewer(
      {
        deviceId: this.deviceId,
        bundle: () => this.bundle,
        session: () => (this.connected ? this.client : null),
        switchTo: (next) => this.switchTo(next),
        isRunning: () => this.running,
        clock: this.clock,
        timers: this.timers,
        random: this.random,
        onRenewed: (serial, notAfter) => this.emit({ type: 'renewed', deviceId: this.deviceId, serial, notAfter }),
        onError: (code, message) => this.fail(code, message),
      },
      { ...options, enabled: options.renew ?? true },
    )
  }

  /** Connects and starts publishing; returns at once (see whenConnected). */
  start(): void {
    if (this.running) return
    this.running = true
    this.connect()
    const jitter = this.opts.startJitter ?? true
    this.scheduleTelemetry(jitter ? Math.round(this.random() * this.intervalMs()) : 0)
  }

  /** Resolves true once connected, false after timeoutMs or on stop. */
  whenConnected(timeoutMs = 10_000): Promise<boolean> {
    if (this.connected) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs)
      const done = (ok: boolean) => {
        clearTimeout(timer)
        this.waiters = this.waiters.filter((w) => w !== done)
        resolve(ok)
      }
      this.waiters.push(done)
    })
  }

  /** Renews the certificate now (inside its window or not: Gatehouse decides), switching to it on success. */
  renewNow(): Promise<RenewOutcome> {
    return this.renewer.renewNow()
  }

  /** The bundle it connects with now (after a renewal: the new certificate and key). */
  currentBundle(): DeviceBundle {
    return this.bundle
  }

  /** Stops cleanly: no new readings, in-flight messages acknowledged (bounded by drainMs), DISCONNECT. */
  async stop(drainMs = 2000): Promise<DeviceStats> {
    this.running = false
    this.timers.clearTimeout(this.telemetryTimer)
    this.timers.clearTimeout(this.reconnectTimer)
    this.renewer.stop()
    await this.renewer.settled()
    if (this.connected) await this.queue.drained(drainMs)
    await this.disconnect()
    for (const w of [...this.waiters]) w(false)
    return this.stats()
  }

  stats(): DeviceStats {
    const q = this.queue.stats()
    return {
      deviceId: this.deviceId,
      connected: this.connected,
      sent: q.sent,
      acked: q.acked,
      queued: q.queued + q.inFlight,
      dropped: q.dropped,
      ...this.counts,
      settingsVersion: this.applied?.version ?? null,
      intervalMs: this.intervalMs(),
      renewals: this.renewer.renewals(),
      lastError: this.lastError,
      lastInsights: [...this.lastInsights],
    }
  }

  private intervalMs(): number {
    return this.applied?.intervalMs ?? this.defaultIntervalMs
  }

  private connect(): void {
    let client: MqttClient
    try {
      client = openClient(this.bundle, this.broker, {
        clientId: this.deviceId,
        clean: true,
        ...(this.opts.connectTimeoutMs !== undefined && { connectTimeoutMs: this.opts.connectTimeoutMs }),
      })
    } catch (err) {
      // an unreadable key or certificate: retrying cannot help
      return this.fail('GH_SIM_CONNECT_FAILED', `the bundle cannot be used for TLS: ${(err as Error).message}`)
    }
    this.client = client
    let lastError: string | null = null
    client.on('error', (err) => (lastError = describeError(err)))
    client.on('connect', () => this.client === client && this.onConnected(client))
    client.on('message', (topic, payload) => this.client === client && this.onMessage(topic, payload))
    client.on('close', () => this.client === client && this.onClosed(client, lastError))
  }

  private onConnected(client: MqttClient): void {
    this.connected = true
    this.failures = 0
    if (this.everConnected && !this.plannedReconnect) this.counts.reconnects++
    this.emit({ type: 'connected', deviceId: this.deviceId, reconnect: this.everConnected && !this.plannedReconnect })
    this.everConnected = true
    this.plannedReconnect = false
    const topics = [`devices/${this.deviceId}/settings`, `devices/${this.deviceId}/insights`, renewalNoticeTopic(this.deviceId)]
    client.subscribe(topics, { qos: 1 }, (err, granted) => {
      const refused = granted?.filter((g) => g.qos === 128).map((g) => g.topic) ?? []
      if (err || refused.length) this.fail('GH_SIM_SUBSCRIBE_REFUSED', err ? err.message : `refused: ${refused.join(', ')}`)
    })
    this.queue.attach((m, done) => client.publish(m.topic, m.payload, { qos: m.qos }, (err) => done(err ?? undefined)))
    for (const w of [...this.waiters]) w(true)
    this.renewer.schedule()
  }

  private onClosed(client: MqttClient, error: string | null): void {
    const wasConnected = this.connected
    this.connected = false
    this.client = null
    this.queue.detach()
    client.end(true)
    if (wasConnected) this.emit({ type: 'disconnected', deviceId: this.deviceId, error })
    else this.fail('GH_SIM_CONNECT_FAILED', error ?? 'closed before CONNACK')
    if (!this.running) return
    const minMs = this.opts.backoff?.minMs ?? 1000
    const maxMs = this.opts.backoff?.maxMs ?? 30_000
    const base = Math.min(maxMs, minMs * 2 ** Math.min(this.failures++, 20))
    const delay = Math.min(maxMs, Math.round(base * (0.75 + 0.5 * this.random())))
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null
      if (this.running && this.client === null) this.connect()
    }, delay)
  }

  private async disconnect(): Promise<void> {
    const client = this.client
    this.client = null
    this.connected = false
    this.queue.detach()
    if (client) await endClient(client)
  }

  /** The renewal switch: pause, let in-flight messages be acknowledged, end cleanly, connect anew. */
  private async switchTo(next: DeviceBundle): Promise<boolean> {
    this.queue.pause()
    await this.queue.drained(this.opts.answerTimeoutMs ?? 10_000)
    this.plannedReconnect = true
    await this.disconnect()
    this.bundle = next
    if (!this.running) return false
    this.connect()
    return this.whenConnected((this.opts.connectTimeoutMs ?? 10_000) + 1000)
  }

  private scheduleTelemetry(delayMs: number): void {
    this.timers.clearTimeout(this.telemetryTimer)
    this.telemetryTimer = this.timers.setTimeout(() => this.tick(), delayMs)
  }

  private tick(): void {
    if (!this.running) return
    const reading = this.model.next(this.clock.now())
    const qos = this.opts.qos ?? 1
    this.queue.push({ topic: `devices/${this.deviceId}/telemetry`, payload: JSON.stringify(reading), qos, kind: 'telemetry' })
    this.checkThresholds(reading, qos)
    this.scheduleTelemetry(this.intervalMs())
  }

  private checkThresholds(reading: TelemetryReading, qos: 0 | 1): void {
    for (const crossing of this.crossings.check(reading, this.applied?.thresholds ?? {})) {
      const alert = alertMessage(reading, crossing)
      this.counts.alerts++
      this.queue.push({ topic: `devices/${this.deviceId}/telemetry/alerts`, payload: JSON.stringify(alert), qos, kind: 'alert' })
      this.emit({ type: 'alert', deviceId: this.deviceId, alert })
    }
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic === `devices/${this.deviceId}/settings`) return this.onSettings(payload)
    if (topic === renewalNoticeTopic(this.deviceId)) return this.renewer.noticed()
    if (topic !== `devices/${this.deviceId}/insights`) return // renewal answers are read by the renewer
    let message: InsightMessage
    try {
      message = JSON.parse(payload.toString('utf8')) as InsightMessage
    } catch {
      return this.fail('GH_SIM_ANSWER_INVALID', `an insight on ${topic} is not JSON`)
    }
    if (message?.type === 'throttled') {
      this.counts.throttled++
      this.emit({ type: 'throttled', deviceId: this.deviceId, message })
      return
    }
    this.counts.insights++
    this.lastInsights.push(message)
    if (this.lastInsights.length > (this.opts.keepInsights ?? 10)) this.lastInsights.shift()
    this.emit({ type: 'insight', deviceId: this.deviceId, message })
  }

  private onSettings(payload: Buffer): void {
    const doc = parseSettingsDocument(payload)
    if (!doc) return this.fail('GH_SIM_ANSWER_INVALID', 'a settings message is not {"version", "settings"}')
    const next = applySettings(this.applied, doc, this.defaultIntervalMs)
    if (!next) return
    const intervalChanged = next.intervalMs !== this.intervalMs()
    this.applied = next
    this.counts.settingsApplied++
    this.crossings.reset()
    if (intervalChanged && this.running) this.scheduleTelemetry(next.intervalMs)
    const report: Outgoing = {
      topic: `devices/${this.deviceId}/settings/reported`,
      payload: JSON.stringify(settingsReport(next)),
      qos: 1,
      kind: 'report',
    }
    this.queue.push(report)
    this.emit({ type: 'settings', deviceId: this.deviceId, version: next.version, intervalMs: next.intervalMs })
  }

  private fail(code: string, message: string): void {
    this.counts.errors++
    this.lastError = `${code}: ${message}`
    this.emit({ type: 'error', deviceId: this.deviceId, code, message })
  }
}
