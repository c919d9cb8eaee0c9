import { BrokerOptionInvalid } from './errors.ts'
import type { TokenBucketOptions } from './token-bucket.ts'

/**
 * Protection limits of the data plane, with safe defaults (docs/conventions.md §12: typed options with
 * defaults; config.ts maps its schema onto this). Anything left out takes the default below.
 *
 * The per-address defaults let a large fleet behind one NAT or load balancer reconnect after a
 * restart: 10,000 devices from one address within a minute (burst 2,000 + 200/s x 60 s = 14,000).
 * What bounds one device is per device id: connectRatePerClientId, publishRate, publishBytesRate.
 */
export interface BrokerLimits {
  /** open TCP connections in total (net.Server maxConnections). Default 10000 */
  maxConnections: number
  /** open TCP connections per remote address, checked before the TLS handshake. Default 10000 */
  maxConnectionsPerIp: number
  /** new TCP connections per remote address (token bucket), before the TLS handshake. Default 200/s, burst 2000 */
  connectionRatePerIp: TokenBucketOptions
  /**
   * CONNECTs per device id (token bucket, across connections), checked in authenticate once the
   * clientId is known to equal the certificate CN: a device in a reconnect loop is refused with
   * CONNACK 3 "server unavailable" (back off) while the others behind its address still connect.
   * Default 0.2/s (one per 5 s), burst 20
   */
  connectRatePerClientId: TokenBucketOptions
  /** TCP accept -> TLS handshake done. Default 10000 ms */
  handshakeTimeoutMs: number
  /** TLS handshake done -> MQTT CONNECT received (aedes connectTimeout). Default 10000 ms */
  connectTimeoutMs: number
  /**
   * Largest MQTT packet a device may send, fixed header included. aedes 1.2 / mqtt-packet 9 have no
   * such limit (a packet may declare 256 MiB), so frame-size-guard.ts enforces it on the socket.
   * Default 131072 (128 KiB)
   */
  maxPacketBytes: number
  /**
   * Bounds of the MQTT keepalive, in seconds. A CONNECT outside them is not refused: its keepalive is
   * clamped (0 = "no keepalive" becomes max), and the server closes a connection silent for 1.5 x the
   * clamped keepalive, so a device that vanished behind a NAT cannot hold its session for hours.
   * Default { min: 5, max: 1200 }
   */
  keepaliveSeconds: { min: number; max: number }
  /**
   * Every packet a device (or claim session) sends after CONNECT, of any type (SUBSCRIBE, UNSUBSCRIBE,
   * PINGREQ, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT), per device across reconnects
   * (packet-budget.ts). Over it => disconnect, audited as device.throttled (limit 'packets').
   * Default 60/s, burst 300: a device at its full publishRate burst at QoS 2 (PUBLISH + PUBREL) plus
   * its pings and acks stays within it
   */
  packetRate: TokenBucketOptions
  /**
   * Outgoing QoS 1/2 messages stored per client (sent and not yet acknowledged, or queued while a
   * clean=false device is offline); a new one beyond it drops the oldest (session-store.ts). Default 100
   */
  maxQueuedMessages: number
  /** The same queue's payload + topic bytes per client; >= maxPacketBytes. Default 1 MiB */
  maxQueuedBytes: number
  /**
   * Inbound QoS 2 messages per client waiting for their PUBREL, across reconnects of a persistent
   * session (aedes' maxInflightInbound bounds one connection only); one more closes the connection.
   * Default 100
   */
  maxInflightInbound: number
  /** PUBLISH packets per device (across reconnects). Default 20/s, burst 100 */
  publishRate: TokenBucketOptions
  /** PUBLISH bytes (topic + payload) per device. Default 64 KiB/s, burst 256 KiB; burst >= maxPacketBytes */
  publishBytesRate: TokenBucketOptions
  /** Repeated refusals/throttles of one key are audited at most once per interval. Default 60000 ms */
  auditIntervalMs: number
  /** Memory bound for per-device and per-address buckets and audit throttles. Default 100000 */
  maxTrackedKeys: number
  /** A client whose socket does not drain within this time is disconnected (aedes). Default 30000 ms */
  drainTimeoutMs: number
  /** A claim (provisioning) session is closed this long after it connected. Default 300 s, 10 s to 1 h */
  claimSessionSeconds: number
  /**
   * How often live sessions are checked against their end: a device certificate's validUntil (expiry,
   * or the end of its renewal overlap), a claim certificate's expiry. A session is closed at most this
   * long after its end (claim sessions also have a timer of their own at claimSessionSeconds).
   * Default 5000 ms, 100 ms to 60 s
   */
  sessionSweepMs: number
}

export type BrokerLimitsInput = Partial<BrokerLimits>

export const DEFAULT_LIMITS: Readonly<BrokerLimits> = Object.freeze({
  maxConnections: 10_000,
  maxConnectionsPerIp: 10_000,
  connectionRatePerIp: Object.freeze({ ratePerSecond: 200, burst: 2_000 }),
  connectRatePerClientId: Object.freeze({ ratePerSecond: 0.2, burst: 20 }),
  handshakeTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxPacketBytes: 128 * 1024,
  keepaliveSeconds: Object.freeze({ min: 5, max: 1200 }),
  packetRate: Object.freeze({ ratePerSecond: 60, burst: 300 }),
  maxQueuedMessages: 100,
  maxQueuedBytes: 1024 * 1024,
  maxInflightInbound: 100,
  publishRate: Object.freeze({ ratePerSecond: 20, burst: 100 }),
  publishBytesRate: Object.freeze({ ratePerSecond: 64 * 1024, burst: 256 * 1024 }),
  auditIntervalMs: 60_000,
  maxTrackedKeys: 100_000,
  drainTimeoutMs: 30_000,
  claimSessionSeconds: 300,
  sessionSweepMs: 5_000,
})

/** Defaults < input; every problem reported at once as GH_BROKER_OPTION_INVALID. */
export function resolveLimits(input: BrokerLimitsInput = {}): Readonly<BrokerLimits> {
  const l: BrokerLimits = {
    ...DEFAULT_LIMITS,
    ...input,
    connectionRatePerIp: { ...DEFAULT_LIMITS.connectionRatePerIp, ...input.connectionRatePerIp },
    connectRatePerClientId: { ...DEFAULT_LIMITS.connectRatePerClientId, ...input.connectRatePerClientId },
    keepaliveSeconds: { ...DEFAULT_LIMITS.keepaliveSeconds, ...input.keepaliveSeconds },
    packetRate: { ...DEFAULT_LIMITS.packetRate, ...input.packetRate },
    publishRate: { ...DEFAULT_LIMITS.publishRate, ...input.publishRate },
    publishBytesRate: { ...DEFAULT_LIMITS.publishBytesRate, ...input.publishBytesRate },
  }
  const problems: string[] = []
  const int = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`${name} must be an integer in [${min}, ${max}], got ${v}`)
  }
  const bucket = (name: string, b: TokenBucketOptions) => {
    if (!(Number.isFinite(b.ratePerSecond) && b.ratePerSecond > 0)) problems.push(`${name}.ratePerSecond must be > 0`)
    if (!(Number.isFinite(b.burst) && b.burst >= 1)) problems.push(`${name}.burst must be >= 1`)
  }
  int('maxConnections', l.maxConnections, 1)
  int('maxConnectionsPerIp', l.maxConnectionsPerIp, 1)
  bucket('connectionRatePerIp', l.connectionRatePerIp)
  bucket('connectRatePerClientId', l.connectRatePerClientId)
  int('handshakeTimeoutMs', l.handshakeTimeoutMs, 1)
  int('connectTimeoutMs', l.connectTimeoutMs, 1)
  // 268435455 is the largest MQTT remaining length; 5 bytes of fixed header on top.
  int('maxPacketBytes', l.maxPacketBytes, 64, 268_435_460)
  int('keepaliveSeconds.min', l.keepaliveSeconds.min, 0, 65_535)
  int('keepaliveSeconds.max', l.keepaliveSeconds.max, Math.max(1, l.keepaliveSeconds.min), 65_535)
  bucket('packetRate', l.packetRate)
  int('maxQueuedMessages', l.maxQueuedMessages, 1, 65_535)
  int('maxQueuedBytes', l.maxQueuedBytes, Math.min(l.maxPacketBytes, 268_435_460))
  int('maxInflightInbound', l.maxInflightInbound, 1, 65_535)
  bucket('publishRate', l.publishRate)
  bucket('publishBytesRate', l.publishBytesRate)
  if (l.publishBytesRate.burst < l.maxPacketBytes) {
    problems.push('publishBytesRate.burst must be >= maxPacketBytes, or a largest packet could never pass')
  }
  int('auditIntervalMs', l.auditIntervalMs, 0)
  int('maxTrackedKeys', l.maxTrackedKeys, 1)
  int('drainTimeoutMs', l.drainTimeoutMs, 1)
  int('claimSessionSeconds', l.claimSessionSeconds, 10, 3_600)
  int('sessionSweepMs', l.sessionSweepMs, 100, 60_000)
  if (problems.length > 0) throw new BrokerOptionInvalid('limits', problems.join('; '))
  return Object.freeze(l)
}
