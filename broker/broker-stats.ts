import { TOPIC_CLASSES, type TopicClass } from './topics.ts'

/**
 * The data plane's counters, in plain integers: the hot path only adds one (docs/architecture.md,
 * "Metrics"), and a metrics collector reads them at scrape time. Monotonic since the broker was created.
 * Every key is from a fixed list or capped (countBy), never a device id, so the series a collector makes
 * from them are bounded.
 */
export interface BrokerStats {
  /** sessions that reached CONNACK 0 */
  accepted: { device: number; claim: number }
  /**
   * connections refused, by reason: a CONNECT refusal (ConnectRefusal in hooks/authenticate.ts,
   * `directory-unavailable`, `unsupported-protocol-version`) or before TLS (`too-many-connections`,
   * `connection-rate`, `max-connections`, `proxy-…`)
   */
  refused: Map<string, number>
  /** TLS handshakes that failed, by Node's or OpenSSL's code (`CERT_HAS_EXPIRED`, `ERR_SSL_…`), capped */
  tlsFailures: Map<string, number>
  /** accepted PUBLISH packets from devices and claim sessions, by topic class */
  publishesIn: Record<TopicClass, number>
  /** messages the broker published to devices and claim sessions, by topic class */
  messagesOut: Record<TopicClass, number>
  /** a broker limit stopped something, by kind (BROKER_LIMIT_KINDS) */
  limitHits: Map<string, number>
}

/** The kinds of limitHits: which limit of broker/limits.ts stopped something. */
export const BROKER_LIMIT_KINDS = [
  'packets',
  'messages',
  'bytes',
  'packet-size',
  'connect-rate',
  'connections-per-address',
  'connection-rate-per-address',
  'max-connections',
] as const
export type BrokerLimitKind = (typeof BROKER_LIMIT_KINDS)[number]

/** Distinct keys a keyed counter may hold; any further key counts under `other`. */
export const MAX_COUNTER_KEYS = 64

export function createBrokerStats(): BrokerStats {
  const perClass = () => Object.fromEntries(TOPIC_CLASSES.map((c) => [c, 0])) as Record<TopicClass, number>
  return {
    accepted: { device: 0, claim: 0 },
    refused: new Map(),
    tlsFailures: new Map(),
    publishesIn: perClass(),
    messagesOut: perClass(),
    limitHits: new Map(),
  }
}

/** Who hears of each refusal (Broker.onConnectionRefused), kept beside the counters, not in them. */
const refusalListeners = new WeakMap<BrokerStats, Set<(reason: string) => void>>()

/** Counts a refused connection (under `refused`, bounded as countBy) and tells the refusal listeners. */
export function countRefused(stats: BrokerStats, reason: string): void {
  countBy(stats.refused, reason)
  for (const listener of refusalListeners.get(stats) ?? []) listener(reason)
}

/** Listens to every countRefused on these stats; returns the unsubscribe. A listener must not throw. */
export function onRefused(stats: BrokerStats, listener: (reason: string) => void): () => void {
  const listeners = refusalListeners.get(stats) ?? new Set()
  refusalListeners.set(stats, listeners)
  listeners.add(listener)
  return () => void listeners.delete(listener)
}

/** Adds one under `key`, or under `other` once the map holds MAX_COUNTER_KEYS keys (untrusted codes stay bounded). */
export function countBy(map: Map<string, number>, key: string): void {
  const at = map.has(key) || map.size < MAX_COUNTER_KEYS ? key : 'other'
  map.set(at, (map.get(at) ?? 0) + 1)
}
