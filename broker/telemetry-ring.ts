import type { DevicePublish, MqttCore } from './create-mqtt-core.ts'

export interface TelemetryRingOptions {
  /** messages kept per device, newest last; default 20 */
  perDevice?: number
  /** devices tracked; past it the device whose telemetry is oldest is forgotten; default 10 000 */
  maxDevices?: number
  /** payload bytes kept over all devices; past it the least recently active devices are forgotten; default 32 MiB */
  maxBytes?: number
}

/** One telemetry message as the API shows it (GET /v1/devices/{id}/telemetry). */
export interface TelemetryEntry {
  receivedAt: string
  /** the levels below devices/{id}/telemetry, joined with '/' ('' for the topic itself) */
  subtopic: string
  qos: 0 | 1 | 2
  /** 'json' when the payload parses as JSON (then `value` is it), else 'base64' (then `value` is the bytes) */
  format: 'json' | 'base64'
  value: unknown
}

interface Stored {
  /** ms, DevicePublish.receivedAtMs */
  receivedAt: number
  subtopic: string
  qos: 0 | 1 | 2
  payload: Buffer
}

export interface TelemetryRing {
  /** the last `limit` messages of a device, newest first; [] for a device never heard from in this process */
  recent(deviceId: string, limit: number): TelemetryEntry[]
  close(): void
}

export const TELEMETRY_RING_DEFAULTS = { perDevice: 20, maxDevices: 10_000, maxBytes: 32 * 1024 * 1024 } as const

/**
 * The recent telemetry of each device, from the broker's accepted publishes (in this process only), so
 * an app can show "last value" without a database: a ring of perDevice messages per device, for at most
 * maxDevices devices and maxBytes of payload in all (a Map in LRU order: a publish moves its device to the
 * end; the front is forgotten first). The publish path only copies the payload; JSON is parsed when read.
 */
export function trackTelemetry(broker: Pick<MqttCore, 'onDevicePublish'>, options: TelemetryRingOptions = {}): TelemetryRing {
  const perDevice = options.perDevice ?? TELEMETRY_RING_DEFAULTS.perDevice
  const maxDevices = options.maxDevices ?? TELEMETRY_RING_DEFAULTS.maxDevices
  const maxBytes = options.maxBytes ?? TELEMETRY_RING_DEFAULTS.maxBytes
  /** device id -> its messages, oldest first; Map order: least recently active first */
  const byDevice = new Map<string, Stored[]>()
  let bytes = 0

  function forget(deviceId: string): void {
    for (const m of byDevice.get(deviceId) ?? []) bytes -= m.payload.length
    byDevice.delete(deviceId)
  }

  function record(m: DevicePublish): void {
    if (m.kind !== 'telemetry') return
    const messages = byDevice.get(m.deviceId) ?? []
    byDevice.delete(m.deviceId)
    byDevice.set(m.deviceId, messages)
    // a copy: aedes may reuse the packet's buffer
    const payload = Buffer.from(m.payload)
    messages.push({ receivedAt: m.receivedAtMs, subtopic: m.subtopic.join('/'), qos: m.qos, payload })
    bytes += payload.length
    if (messages.length > perDevice) bytes -= (messages.shift() as Stored).payload.length
    while (byDevice.size > maxDevices || (bytes > maxBytes && byDevice.size > 1)) forget(byDevice.keys().next().value as string)
    // one device alone over maxBytes (maxBytes below perDevice * maxPacketBytes): its oldest go first
    while (bytes > maxBytes && messages.length > 1) bytes -= (messages.shift() as Stored).payload.length
  }

  const off = broker.onDevicePublish(record)
  return {
    recent: (deviceId, limit) => (limit < 1 ? [] : (byDevice.get(deviceId) ?? []).slice(-limit).reverse().map(view)),
    close: off,
  }
}

function view(m: Stored): TelemetryEntry {
  const base = { receivedAt: new Date(m.receivedAt).toISOString(), subtopic: m.subtopic, qos: m.qos }
  try {
    return { ...base, format: 'json', value: JSON.parse(m.payload.toString('utf8')) }
  } catch {
    return { ...base, format: 'base64', value: m.payload.toString('base64') }
  }
}
