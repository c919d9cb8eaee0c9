import { deepFreeze, schemaDefaults, type FromSchema } from '../certs/index.ts'
import { BrokerOptionInvalid } from './errors.ts'
import { optionsValidator } from './option-schemas.ts'

/**
 * Protection limits of the data plane, with safe defaults (docs/conventions.md §12: typed options with
 * defaults). LIMITS_SCHEMA is the one declaration: the type, the ranges and the defaults all come from
 * it, config.ts embeds it under `limits` (gatehouse.json and GATEHOUSE_LIMITS_* env names), and
 * checkLimits() (in resolveLimits()) checks only the rules that relate two limits. A new limit is one entry below.
 *
 * The per-address defaults let a large fleet behind one NAT or load balancer reconnect after a
 * restart: 10,000 devices from one address within a minute (burst 2,000 + 200/s x 60 s = 14,000).
 * What bounds one device is per device id: connectRatePerClientId, publishRate, publishBytesRate.
 */

/** An integer option in [minimum, maximum] with its default. */
const int = (minimum: number, dflt: number, maximum = Number.MAX_SAFE_INTEGER) =>
  ({ type: 'integer', minimum, maximum, default: dflt }) as const

/** The ranges of a token bucket's values (token-bucket.ts): rate > 0 tokens per second, burst >= 1. */
export const BUCKET_VALUES = {
  ratePerSecond: { type: 'number', exclusiveMinimum: 0 },
  burst: { type: 'number', minimum: 1 },
} as const

/** A token bucket whose fields each have a default. */
const bucket = (ratePerSecond: number, burst: number) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: {
      ratePerSecond: { ...BUCKET_VALUES.ratePerSecond, default: ratePerSecond },
      burst: { ...BUCKET_VALUES.burst, default: burst },
    },
    default: {},
  }) as const

// 268435455 is the largest MQTT remaining length; 5 bytes of fixed header on top.
const MAX_MQTT_PACKET = 268_435_460

export const LIMITS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** open TCP connections in total (net.Server maxConnections) */
    maxConnections: int(1, 10_000),
    /** open TCP connections per remote address, checked before the TLS handshake */
    maxConnectionsPerIp: int(1, 10_000),
    /** new TCP connections per remote address (token bucket), before the TLS handshake */
    connectionRatePerIp: bucket(200, 2_000),
    /**
     * CONNECTs per device id (token bucket, across connections), checked in authenticate once the
     * clientId is known to equal the certificate CN: a device in a reconnect loop is refused with
     * CONNACK 3 "server unavailable" (back off) while the others behind its address still connect.
     * Default 0.2/s (one per 5 s), burst 20
     */
    connectRatePerClientId: bucket(0.2, 20),
    /** TCP accept -> TLS handshake done, ms */
    handshakeTimeoutMs: int(1, 10_000),
    /** TLS handshake done -> MQTT CONNECT received (aedes connectTimeout), ms */
    connectTimeoutMs: int(1, 10_000),
    /**
     * Largest MQTT packet a device may send, fixed header included. aedes 1.2 / mqtt-packet 9 have no
     * such limit (a packet may declare 256 MiB), so frame-size-guard.ts enforces it on the socket.
     * Default 131072 (128 KiB)
     */
    maxPacketBytes: int(64, 128 * 1024, MAX_MQTT_PACKET),
    /**
     * Bounds of the MQTT keepalive, in seconds. A CONNECT outside them is not refused: its keepalive is
     * clamped (0 = "no keepalive" becomes max), and the server closes a connection silent for 1.5 x the
     * clamped keepalive, so a device that vanished behind a NAT cannot hold its session for hours.
     * max >= min (checked in resolveLimits)
     */
    keepaliveSeconds: {
      type: 'object',
      additionalProperties: false,
      properties: { min: int(0, 5, 65_535), max: int(1, 1200, 65_535) },
      default: {},
    },
    /**
     * Every packet a device (or claim session) sends after CONNECT, of any type (SUBSCRIBE, UNSUBSCRIBE,
     * PINGREQ, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT), per device across reconnects
     * (packet-budget.ts). Over it => disconnect, audited as device.throttled (limit 'packets').
     * Default 60/s, burst 300: a device at its full publishRate burst at QoS 2 (PUBLISH + PUBREL) plus
     * its pings and acks stays within it
     */
    packetRate: bucket(60, 300),
    /**
     * Outgoing QoS 1/2 messages stored per client (sent and not yet acknowledged, or queued while a
     * clean=false device is offline); a new one beyond it drops the oldest (session-store.ts). Also the
     * messages of any QoS a connected client's socket has not written yet (it is not reading); a new
     * one beyond it is dropped for that client (slow-reader-bound.ts)
     */
    maxQueuedMessages: int(1, 100, 65_535),
    /** The same queues' payload + topic bytes per client; >= maxPacketBytes (checked in resolveLimits). Default 1 MiB */
    maxQueuedBytes: int(1, 1024 * 1024),
    /**
     * Inbound QoS 2 messages per client waiting for their PUBREL, across reconnects of a persistent
     * session (aedes' maxInflightInbound bounds one connection only); one more closes the connection
     */
    maxInflightInbound: int(1, 100, 65_535),
    /** PUBLISH packets per device (across reconnects) */
    publishRate: bucket(20, 100),
    /** PUBLISH bytes (topic + payload) per device; burst >= maxPacketBytes (checked in resolveLimits) */
    publishBytesRate: bucket(64 * 1024, 256 * 1024),
    /** Repeated refusals/throttles of one key are audited at most once per interval, ms */
    auditIntervalMs: int(0, 60_000),
    /** Memory bound for per-device and per-address buckets and audit throttles */
    maxTrackedKeys: int(1, 100_000),
    /** A client whose socket does not drain within this time is disconnected (aedes), ms */
    drainTimeoutMs: int(1, 30_000),
    /** A claim (provisioning) session is closed this long after it connected, 10 s to 1 h */
    claimSessionSeconds: int(10, 300, 3_600),
    /**
     * How often live sessions are checked against their end: a device certificate's validUntil (expiry,
     * or the end of its renewal overlap), a claim certificate's expiry. A session is closed at most this
     * long after its end (claim sessions also have a timer of their own at claimSessionSeconds).
     * 100 ms to 60 s
     */
    sessionSweepMs: int(100, 5_000, 60_000),
  },
} as const

export type BrokerLimits = FromSchema<typeof LIMITS_SCHEMA>
/** What callers pass: anything left out (at any depth) takes its default. */
export type BrokerLimitsInput = FromSchema<typeof LIMITS_SCHEMA, 'input'>

const validate = optionsValidator<BrokerLimits>(LIMITS_SCHEMA, 'limits', (problems) => new BrokerOptionInvalid('limits', problems))

/** The rules that relate two limits; each range is in LIMITS_SCHEMA. */
function crossLimitProblems(l: BrokerLimits): string[] {
  const problems: string[] = []
  if (l.keepaliveSeconds.max < l.keepaliveSeconds.min) problems.push('keepaliveSeconds.max must be >= keepaliveSeconds.min')
  if (l.maxQueuedBytes < l.maxPacketBytes) problems.push('maxQueuedBytes must be >= maxPacketBytes')
  if (l.publishBytesRate.burst < l.maxPacketBytes) {
    problems.push('publishBytesRate.burst must be >= maxPacketBytes, or a largest packet could never pass')
  }
  return problems
}

/**
 * The rules relating two limits, over limits LIMITS_SCHEMA has already checked and filled (resolveLimits, or
 * the configuration's one validation, config.ts): GH_BROKER_OPTION_INVALID with every problem.
 */
export function checkLimits(l: BrokerLimits): BrokerLimits {
  const problems = crossLimitProblems(l)
  if (problems.length > 0) throw new BrokerOptionInvalid('limits', problems.join('; '))
  return l
}

/** Defaults < input; every problem reported at once as GH_BROKER_OPTION_INVALID. The input is not modified. */
export function resolveLimits(input: BrokerLimitsInput = {}): Readonly<BrokerLimits> {
  return deepFreeze(checkLimits(validate(input)))
}

// the schema's defaults without its validator: importing this file (config.ts, every CLI call) validates nothing
export const DEFAULT_LIMITS: Readonly<BrokerLimits> = deepFreeze(checkLimits(schemaDefaults<BrokerLimits>(LIMITS_SCHEMA)))
