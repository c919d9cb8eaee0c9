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
  /** DevicePublish.subtopic, joined when shown */
  subtopic: readonly string[]
  qos: 0 | 1 | 2
  payload: Buffer
}

export interface TelemetryRing {
  /** the last `limit` messages of a device, newest first; [] for a device never heard from in this process */
  recent(deviceId: string, limit: number): TelemetryEntry[]
  close(): void
}

export const TELEMETRY_RING_DEFAULTS = { perDevice: 20, maxDevices: 10_000, maxBytes: 32 * 1024 * 1024 } as const

/** At most this many recently active devices get a second chance per device forgotten. */
const SECOND_CHANCES = 64

/**
 * The recent telemetry of each device, from the broker's accepted publishes (in this process only), so
 * an app can show "last value" without a database: a ring of perDevice messages per device, for at most
 * maxDevices devices and maxBytes of payload in all. Past a bound the least recently active device is
 * forgotten, by the CLOCK approximation of LRU the token buckets use (token-bucket.ts): a publish marks its
 * device active (no Map re-insertion per message); the front of the Map is forgotten unless it was active
 * since it was last passed (then it moves to the back, unmarked), and the device that just published never
 * is. The publish path only copies the payload; JSON is parsed and the subtopic joined when read.
 */
export function trackTelemetry(broker: Pick<MqttCore, 'onDevicePublish'>, options: TelemetryRingOptions = {}): TelemetryRing {
  const perDevice = options.perDevice ?? TELEMETRY_RING_DEFAULTS.perDevice
  const maxDevices = options.maxDevices ?? TELEMETRY_RING_DEFAULTS.maxDevices
  const maxBytes = options.maxBytes ?? TELEMETRY_RING_DEFAULTS.maxBytes
  /** device id -> its messages (oldest first) and whether it published since the sweep last passed it */
  const byDevice = new Map<string, { messages: Stored[]; active: boolean }>()
  let bytes = 0

  /** Forgets a least recently active device other than `keep` (there is one: callers check size > 1). */
  function forgetOne(keep: string): void {
    for (let chances = 0; ; chances++) {
      const [deviceId, ring] = byDevice.entries().next().value as [string, { messages: Stored[]; active: boolean }]
      byDevice.delete(deviceId)
      if (deviceId !== keep && (!ring.active || chances >= SECOND_CHANCES)) {
        for (const m of ring.messages) bytes -= m.payload.length
        return
      }
      ring.active = false
      byDevice.set(deviceId, ring)
    }
  }

  function record(m: DevicePublish): void {
    if (m.kind !== 'telemetry') return
    let ring = byDevice.get(m.deviceId)
    if (ring) ring.active = true
    else {
      ring = { messages: [], active: false }
      byDevice.set(m.deviceId, ring)
    }
    const messages = ring.messages
    // a copy: aedes may reuse the packet's buffer
    const payload = Buffer.from(m.payload)
    messages.push({ receivedAt: m.receivedAtMs, subtopic: m.subtopic, qos: m.qos, payload })
    bytes += payload.length
    if (messages.length > perDevice) bytes -= (messages.shift() as Stored).payload.length
    while (byDevice.size > maxDevices || (bytes > maxBytes && byDevice.size > 1)) forgetOne(m.deviceId)
    // one device alone over maxBytes (maxBytes below perDevice * maxPacketBytes): its oldest go first
    while (bytes > maxBytes && messages.length > 1) bytes -= (messages.shift() as Stored).payload.length
  }

  const off = broker.onDevicePublish(record)
  return {
    recent: (deviceId, limit) => (limit < 1 ? [] : (byDevice.get(deviceId)?.messages ?? []).slice(-limit).reverse().map(view)),
    close: off,
  }
}

function view(m: Stored): TelemetryEntry {
  const base = { receivedAt: new Date(m.receivedAt).toISOString(), subtopic: m.subtopic.join('/'), qos: m.qos }
  try {
    return { ...base, format: 'json', value: JSON.parse(m.payload.toString('utf8')) }
  } catch {
    return { ...base, format: 'base64', value: m.payload.toString('base64') }
  }
}
