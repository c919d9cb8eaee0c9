import tls from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

/**
 * A fleet connector: connects many devices, each with its own certificate and clientId = CN, over
 * mutual TLS with mqtt.js, a bounded number at a time, and records how long each connect took (TCP
 * connect start -> CONNACK). The device simulator and the benchmarks build on it.
 *
 * Every wait is bounded: each connect by `connectTimeoutMs`, the whole fleet by `deadlineMs`. Clients
 * never reconnect on their own (reconnectPeriod 0), so a refused or dropped device shows up as such.
 */

/** What a device holds: its certificate and key (PEM) and the CA chain it trusts (PEM). */
export interface DeviceBundle {
  deviceId: string
  cert: string
  key: string
  ca: string
}

export interface ConnectOptions {
  port: number
  /** default 127.0.0.1 */
  host?: string
  /** TLS server name to verify the broker against; default: none for an IP (its IP SAN is checked) */
  servername?: string
  /** per device: TCP connect start -> CONNACK. Default 10000 ms */
  connectTimeoutMs?: number
  /** MQTT keepalive in seconds. Default 60 */
  keepaliveSeconds?: number
  /** anything else for mqtt.js (protocolVersion defaults to 4, MQTT 3.1.1) */
  clientOptions?: IClientOptions
}

export interface FleetOptions extends ConnectOptions {
  /** connects in flight at once. Default 50 */
  concurrency?: number
  /** the whole fleet: no new connect starts after this. Default 120000 ms */
  deadlineMs?: number
  /** called after each connect settles (ok or not) */
  onProgress?: (settled: number, total: number) => void
}

export interface ConnectOutcome {
  deviceId: string
  ok: boolean
  /** TCP connect start -> CONNACK (ok), or -> the failure */
  latencyMs: number
  /** the CONNACK return code when one arrived (0 = accepted) */
  connack: number | null
  /** what went wrong, when not ok */
  error: string | null
}

export interface ConnectedDevice {
  deviceId: string
  client: MqttClient
  latencyMs: number
}

export interface Fleet {
  /** connected devices, in the order they were given (failed ones left out) */
  connected: ConnectedDevice[]
  /** one per device that was tried, in the order they were given */
  outcomes: ConnectOutcome[]
  /** devices never tried because the deadline passed */
  notTried: number
  /** first connect start -> last connect settled */
  elapsedMs: number
  /** ends every client (forcefully) and resolves when all are closed, bounded by timeoutMs */
  close(timeoutMs?: number): Promise<void>
}

const secureContexts = new WeakMap<DeviceBundle, tls.SecureContext>()

/** The device's TLS context (parsed key, certificate and trust anchors), made once per bundle. */
export function secureContextOf(device: DeviceBundle): tls.SecureContext {
  let ctx = secureContexts.get(device)
  if (!ctx) {
    ctx = tls.createSecureContext({ cert: device.cert, key: device.key, ca: device.ca, minVersion: 'TLSv1.2' })
    secureContexts.set(device, ctx)
  }
  return ctx
}

/**
 * Connects one device and resolves when CONNACK arrives, or rejects (and ends the client) on a
 * refusal, an error, a close or the timeout. The TLS context is prepared before the clock starts, so
 * the latency is the network exchange: TCP connect, TLS handshake, CONNECT -> CONNACK.
 */
export async function connectDevice(device: DeviceBundle, options: ConnectOptions): Promise<ConnectedDevice> {
  const outcome = await tryConnect(device, options)
  if (!outcome.ok || !outcome.client) {
    throw Object.assign(new Error(`device ${device.deviceId} did not connect: ${outcome.error}`), { outcome: outcome.result })
  }
  return { deviceId: device.deviceId, client: outcome.client, latencyMs: outcome.result.latencyMs }
}

interface Attempt {
  ok: boolean
  client: MqttClient | null
  error: string | null
  result: ConnectOutcome
}

function tryConnect(device: DeviceBundle, options: ConnectOptions): Promise<Attempt> {
  const secureContext = secureContextOf(device)
  const timeoutMs = options.connectTimeoutMs ?? 10_000
  const started = performance.now()
  // mqtt.js hands its options to tls.connect, which takes a prepared secureContext (not in its types)
  const mqttOptions: IClientOptions & { secureContext: tls.SecureContext } = {
    protocol: 'mqtts',
    host: options.host ?? '127.0.0.1',
    port: options.port,
    ...(options.servername !== undefined && { servername: options.servername }),
    secureContext,
    rejectUnauthorized: true,
    clientId: device.deviceId,
    protocolVersion: 4,
    clean: true,
    keepalive: options.keepaliveSeconds ?? 60,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    ...options.clientOptions,
  }
  const client = mqtt.connect(mqttOptions)
  let connack: number | null = null
  const onPacket = (p: { cmd: string }) => {
    if (p.cmd === 'connack') connack = (p as { returnCode?: number }).returnCode ?? null
  }
  client.on('packetreceive', onPacket)
  return new Promise<Attempt>((resolve) => {
    let settled = false
    const finish = (ok: boolean, error: string | null) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.removeListener('connect', onConnect)
      client.removeListener('close', onClose)
      client.removeListener('packetreceive', onPacket)
      const latencyMs = performance.now() - started
      if (!ok) client.end(true)
      // after the connect, errors are the owner's business; an unhandled 'error' must not crash the fleet
      client.removeAllListeners('error')
      client.on('error', () => {})
      resolve({ ok, client: ok ? client : null, error, result: { deviceId: device.deviceId, ok, latencyMs, connack, error } })
    }
    const onConnect = () => finish(true, null)
    const onClose = () => finish(false, connack !== null && connack !== 0 ? `CONNACK ${connack}` : 'closed before CONNACK')
    const timer = setTimeout(() => finish(false, `no CONNACK within ${timeoutMs} ms`), timeoutMs)
    client.once('connect', onConnect)
    client.once('close', onClose)
    client.on('error', (err: Error & { code?: string | number }) => finish(false, String(err.code ?? err.message)))
  })
}

/**
 * Connects `devices` with at most `concurrency` connects in flight and resolves when every device has
 * connected or failed (or the deadline passed). Failures do not stop the others; see `outcomes`.
 */
export async function connectFleet(devices: readonly DeviceBundle[], options: FleetOptions): Promise<Fleet> {
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 50, devices.length || 1))
  const deadline = performance.now() + (options.deadlineMs ?? 120_000)
  const attempts: (Attempt | undefined)[] = new Array(devices.length)
  let next = 0
  let settled = 0
  const started = performance.now()
  async function worker(): Promise<void> {
    while (next < devices.length && performance.now() < deadline) {
      const i = next++
      attempts[i] = await tryConnect(devices[i] as DeviceBundle, options)
      options.onProgress?.(++settled, devices.length)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsedMs = performance.now() - started
  const tried = attempts.filter((a): a is Attempt => a !== undefined)
  const connected = tried
    .filter((a) => a.ok && a.client)
    .map((a) => ({ deviceId: a.result.deviceId, client: a.client as MqttClient, latencyMs: a.result.latencyMs }))
  return {
    connected,
    outcomes: tried.map((a) => a.result),
    notTried: devices.length - tried.length,
    elapsedMs,
    close: (timeoutMs = 10_000) =>
      closeClients(
        connected.map((c) => c.client),
        timeoutMs,
      ),
  }
}

/** Ends clients forcefully; resolves when all have closed or after timeoutMs. */
export async function closeClients(clients: readonly MqttClient[], timeoutMs = 10_000): Promise<void> {
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs)
          client.end(true, {}, () => {
            clearTimeout(timer)
            resolve()
          })
        }),
    ),
  )
}
