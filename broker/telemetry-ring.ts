import type { DevicePublish, MqttCore } from './create-mqtt-core.ts'

export interface TelemetryRingOptions {
  /** messages kept per device, newest last; default 20 */
  perDevice?: number
  /** devices tracked; past it the device whose telemetry is oldest is forgotten; default 10 000 */
  maxDevices?: number
  /**
   * payload bytes kept over all devices (the copies' buffers: a buffer is reused for a payload up to half its
   * size); past it the least recently active devices are forgotten; default 32 MiB
   */
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

/** One slot of a device's ring; its buffer is reused by the messages that pass through it. */
interface Stored {
  /** ms, DevicePublish.receivedAtMs */
  receivedAt: number
  /** DevicePublish.subtopic, joined when shown */
  subtopic: readonly string[]
  qos: 0 | 1 | 2
  /** a copy of the payload in its first `length` bytes; EMPTY for a slot that holds no message */
  buffer: Buffer
  length: number
}

/** A device's last messages: `count` slots from `head` (the oldest) on, wrapping around. */
interface Ring {
  slots: Stored[]
  head: number
  count: number
  /** published since the sweep last passed it */
  active: boolean
}

const EMPTY = Buffer.alloc(0)

/** A slot's buffer is reused for a payload it fits, unless it is more than twice (and 64 bytes over) its size. */
const fits = (capacity: number, size: number) => capacity >= size && capacity <= 2 * size + 64

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
  const byDevice = new Map<string, Ring>()
  /** bytes of the slots' buffers, over all devices (what the ring holds: at least the payloads' bytes) */
  let bytes = 0

  /** Forgets a least recently active device other than `keep` (there is one: callers check size > 1). */
  function forgetOne(keep: string): void {
    for (let chances = 0; ; chances++) {
      const [deviceId, ring] = byDevice.entries().next().value as [string, Ring]
      byDevice.delete(deviceId)
      if (deviceId !== keep && (!ring.active || chances >= SECOND_CHANCES)) {
        for (const slot of ring.slots) bytes -= slot.buffer.length
        return
      }
      ring.active = false
      byDevice.set(deviceId, ring)
    }
  }

  /** Drops a device's oldest message. */
  function dropOldest(ring: Ring): void {
    const slot = ring.slots[ring.head] as Stored
    bytes -= slot.buffer.length
    slot.buffer = EMPTY
    slot.length = 0
    ring.head = (ring.head + 1) % perDevice
    ring.count--
  }

  function record(m: DevicePublish): void {
    if (m.kind !== 'telemetry') return
    let ring = byDevice.get(m.deviceId)
    if (ring) ring.active = true
    else {
      ring = { slots: [], head: 0, count: 0, active: false }
      byDevice.set(m.deviceId, ring)
    }
    let at: number
    if (ring.count === perDevice) {
      // full: the oldest slot takes the new message, its buffer reused
      at = ring.head
      ring.head = (ring.head + 1) % perDevice
    } else {
      at = (ring.head + ring.count) % perDevice
      ring.count++
    }
    let slot = ring.slots[at]
    if (slot === undefined) {
      // at === slots.length: a ring fills its slots in order before it first wraps
      slot = { receivedAt: 0, subtopic: [], qos: 0, buffer: EMPTY, length: 0 }
      ring.slots[at] = slot
    }
    const size = m.payload.length
    // a copy (aedes may reuse the packet's buffer, and a view would keep the socket's whole chunk alive),
    // into the slot's own buffer when it fits: no allocation per message once a device's slots are filled
    if (!fits(slot.buffer.length, size)) {
      bytes += size - slot.buffer.length
      slot.buffer = Buffer.allocUnsafeSlow(size)
    }
    // TypedArray#set, not Buffer#copy: the same bytes at 0 (the slot fits them) without copy()'s argument handling
    slot.buffer.set(m.payload)
    slot.length = size
    slot.receivedAt = m.receivedAtMs
    slot.subtopic = m.subtopic
    slot.qos = m.qos
    while (byDevice.size > maxDevices || (bytes > maxBytes && byDevice.size > 1)) forgetOne(m.deviceId)
    // one device alone over maxBytes (maxBytes below perDevice * maxPacketBytes): its oldest go first
    while (bytes > maxBytes && ring.count > 1) dropOldest(ring)
  }

  function recent(deviceId: string, limit: number): TelemetryEntry[] {
    const ring = byDevice.get(deviceId)
    if (ring === undefined || limit < 1) return []
    const out: TelemetryEntry[] = []
    for (let i = ring.count - 1; i >= 0 && out.length < limit; i--) out.push(view(ring.slots[(ring.head + i) % perDevice] as Stored))
    return out
  }

  const off = broker.onDevicePublish(record)
  return { recent, close: off }
}

function view(m: Stored): TelemetryEntry {
  const base = { receivedAt: new Date(m.receivedAt).toISOString(), subtopic: m.subtopic.join('/'), qos: m.qos }
  const payload = m.buffer.subarray(0, m.length)
  try {
    return { ...base, format: 'json', value: JSON.parse(payload.toString('utf8')) }
  } catch {
    return { ...base, format: 'base64', value: payload.toString('base64') }
  }
}
