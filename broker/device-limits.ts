import type { Logger } from 'pino'
import type { FromSchema } from '../certs/index.ts'
import type { ControlEvent } from './device-directory.ts'
import { BUCKET_VALUES, type BrokerLimits } from './limits.ts'
import type { Session, SessionRegistry } from './sessions.ts'
import type { KeyedTokenBuckets } from './token-bucket.ts'

/**
 * The broker's limits a tier (and one device, overriding its tier) may set: what one device does per
 * second, the rates a service tier sells. The PUBLISH message and byte rates, and the packet rate, which
 * is the subscribe budget too (every SUBSCRIBE, UNSUBSCRIBE and PINGREQ spends it; LIMITS_SCHEMA has no
 * separate one). The rest of LIMITS_SCHEMA stays global: the per-address and connect-rate limits are
 * checked before the device (and so its tier) is known, and the packet size, queue, inflight, keepalive
 * and timeout bounds protect the broker's memory and sockets, which no tier should buy more of.
 */
export const DEVICE_LIMIT_NAMES = ['publishRate', 'publishBytesRate', 'packetRate'] as const
export type DeviceLimitName = (typeof DEVICE_LIMIT_NAMES)[number]
export type DeviceLimits = Pick<BrokerLimits, DeviceLimitName>

/** A bucket's values without defaults: what is left out comes from the global limits. */
const bucketValues = { type: 'object', additionalProperties: false, properties: BUCKET_VALUES } as const

/** What a tier or a device sets: any of DEVICE_LIMIT_NAMES, each value in LIMITS_SCHEMA's range (BUCKET_VALUES). */
export const DEVICE_LIMITS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { publishRate: bucketValues, publishBytesRate: bucketValues, packetRate: bucketValues },
} as const
export type DeviceLimitValues = FromSchema<typeof DEVICE_LIMITS_SCHEMA>

/** The global limits with `values` on top, field by field. */
export function deviceLimits(global: Readonly<BrokerLimits>, values: DeviceLimitValues = {}): DeviceLimits {
  return {
    publishRate: { ...global.publishRate, ...values.publishRate },
    publishBytesRate: { ...global.publishBytesRate, ...values.publishBytesRate },
    packetRate: { ...global.packetRate, ...values.packetRate },
  }
}

/** The rules relating `values` to the global limits (the ranges are in the schema); [] when they hold. */
export function deviceLimitProblems(global: Readonly<BrokerLimits>, values: DeviceLimitValues): string[] {
  const l = deviceLimits(global, values)
  return l.publishBytesRate.burst < global.maxPacketBytes
    ? [`publishBytesRate.burst must be >= limits.maxPacketBytes (${global.maxPacketBytes}), or a largest packet could never pass`]
    : []
}

/**
 * Where the broker reads a device's limits (the control plane's registry: its tier's values with its
 * own override on top; docs/conventions.md §3) and its current group. Read at each CONNECT and again
 * when a change is announced (`tier.updated`, `device.updated`).
 */
export interface DeviceLimitsSource {
  /**
   * null: no such device (the directory refuses it anyway). `device`: its tier and group as the caller has
   * just read them (a CONNECT, from the directory's answer), so the source need not read the device again.
   */
  limitsOf(
    deviceId: string,
    device?: { tier: string; group: string | null },
  ): Promise<{ tier: string; group: string | null; broker: DeviceLimitValues } | null>
}

/** The per-device buckets, by the limit they enforce. */
export type DeviceBuckets = Record<DeviceLimitName, KeyedTokenBuckets>

/** Gives the device's buckets its limits, live: what it already spent stays spent. */
export function applyDeviceLimits(buckets: DeviceBuckets, global: Readonly<BrokerLimits>, deviceId: string, values: DeviceLimitValues) {
  const limits = deviceLimits(global, values)
  // a limit neither its tier nor the device sets is the global one: no bucket is made for it at CONNECT (its
  // first packet makes it), and one it kept from an earlier connect goes back to the global values
  for (const name of DEVICE_LIMIT_NAMES) buckets[name].configure(deviceId, values[name] === undefined ? undefined : limits[name])
}

/**
 * Applies changed limits to connected devices: on `device.updated` (its tier, group or override
 * changed) that device, on `tier.updated` every connected device of that tier. The change feed
 * delivers an event within its interval (200 ms by default), so a change reaches connected devices
 * within a second. A device's session also takes its new group here: what reads the group of a live
 * session (apps' filter, hooks/authorize-forward.ts; telemetry routes) follows a move live. Only a
 * session's last read is applied, and `tier.updated` reads again every session with a read in flight (the
 * connect's epoch rule, docs/architecture.md "An event during a CONNECT", for live sessions).
 */
export function followDeviceLimits(deps: {
  source: DeviceLimitsSource
  events: { onEvent(listener: (event: ControlEvent) => void): () => void }
  sessions: SessionRegistry
  buckets: DeviceBuckets
  limits: Readonly<BrokerLimits>
  log: Logger
}): () => void {
  // The last read started per session: an earlier one answering later (reads overlap when events come
  // fast, and may answer out of order on PostgreSQL) may predate a change, so only the last is applied.
  const reading = new WeakMap<Session, number>()
  let reads = 0
  const reapply = (session: Session) => {
    const read = ++reads
    reading.set(session, read)
    deps.source.limitsOf(session.deviceId).then(
      (found) => {
        if (reading.get(session) !== read) return
        reading.delete(session)
        if (!found || session.client.closed) return
        session.tier = found.tier
        if (session.group !== found.group) {
          deps.log.info({ deviceId: session.deviceId, from: session.group, to: found.group }, 'device group applied to its session')
          session.group = found.group
        }
        applyDeviceLimits(deps.buckets, deps.limits, session.deviceId, found.broker)
        deps.log.debug({ deviceId: session.deviceId, tier: found.tier }, 'device limits applied')
      },
      (err: unknown) => {
        if (reading.get(session) === read) reading.delete(session)
        deps.log.warn({ err, deviceId: session.deviceId }, 'reading device limits failed; the previous ones stay')
      },
    )
  }
  return deps.events.onEvent((event) => {
    if (event.type === 'device.updated') {
      const session = deps.sessions.get(event.deviceId)
      if (session && !session.client.closed) reapply(session)
    } else if (event.type === 'tier.updated') {
      // and every session being read again: the tier that read answers with may be this one
      for (const session of deps.sessions.all())
        if ((session.tier === event.tier || reading.has(session)) && !session.client.closed) reapply(session)
    }
  })
}

/** The hooks' buckets, by the limit each enforces. */
export function deviceBuckets(deps: {
  publishMessages: KeyedTokenBuckets
  publishBytes: KeyedTokenBuckets
  packets: KeyedTokenBuckets
}): DeviceBuckets {
  return { publishRate: deps.publishMessages, publishBytesRate: deps.publishBytes, packetRate: deps.packets }
}
