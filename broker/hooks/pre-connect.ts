import { capText } from '../../certs/index.ts'
import { MQTT_3_1_1 } from '../reason-codes.ts'
import type { BrokerLimits } from '../limits.ts'
import { countRefused } from '../broker-stats.ts'
import { remoteAddressOf, throttledLog, type HookDeps, type PreConnectHandler } from './hook-deps.ts'

/**
 * The keepalive the broker holds a connection to: the device's, clamped to limits.keepaliveSeconds
 * (as AWS IoT Core does). 0 ("no keepalive", allowed by MQTT 3.1.1 and sent by common clients) becomes
 * the max, so a silent device is still closed by the server after 1.5 x max seconds.
 */
export function clampKeepalive(requested: number, bounds: BrokerLimits['keepaliveSeconds']): number {
  if (!(requested > 0) || requested > bounds.max) return bounds.max
  return Math.max(requested, bounds.min, 1)
}

/**
 * First sight of a CONNECT, before aedes checks the protocol version. It records what later hooks need
 * (the CONNECT itself is not passed to authenticate) and never refuses: refusals happen in
 * authenticate, where they get a CONNACK and an audit record. It clamps the keepalive (clampKeepalive).
 *
 * MQTT 5 (and anything but 3.1 / 3.1.1) is refused by aedes itself right after this hook, with CONNACK
 * return code 1 "unacceptable protocol version" followed by a close; that is logged here, not audited
 * (it is a client configuration problem, not an authorization decision), at most once per interval per
 * remote address and version (throttledLog), with the clientId capped.
 */
export function createPreConnect(deps: Pick<HookDeps, 'connections' | 'log' | 'throttle' | 'limits' | 'stats'>): PreConnectHandler {
  const log = deps.log.child({ module: 'broker.auth' })
  return (client, packet, callback) => {
    const remoteAddress = remoteAddressOf(client)
    if (packet.protocolVersion !== MQTT_3_1_1 && packet.protocolVersion !== 3) {
      countRefused(deps.stats, 'unsupported-protocol-version')
      throttledLog(
        deps,
        log,
        `connect.refused:unsupported-protocol-version:${String(packet.protocolVersion)}:${remoteAddress}`,
        { clientId: packet.clientId, remoteAddress, protocolVersion: packet.protocolVersion, reason: 'unsupported-protocol-version' },
        'connect refused',
      )
    }
    // A device's will is a publish like any other: no retained copies (see authorize-publish.ts).
    if (packet.will) packet.will.retain = false
    // aedes arms its keepalive timer from packet.keepalive after this hook (handlers/connect.js).
    const requestedKeepalive = packet.keepalive ?? 0
    packet.keepalive = clampKeepalive(requestedKeepalive, deps.limits.keepaliveSeconds)
    if (packet.keepalive !== requestedKeepalive) {
      log.debug({ clientId: capText(packet.clientId), remoteAddress, requestedKeepalive, keepalive: packet.keepalive }, 'keepalive clamped')
    }
    deps.connections.set(client, {
      remoteAddress,
      clientId: packet.clientId,
      keepalive: packet.keepalive,
      protocolVersion: packet.protocolVersion ?? MQTT_3_1_1,
      willTopic: packet.will?.topic ?? null,
      clean: packet.clean !== false,
      session: null,
      claim: null,
    })
    callback(null, true)
  }
}
