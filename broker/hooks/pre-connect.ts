import { MQTT_3_1_1 } from '../reason-codes.ts'
import { remoteAddressOf, throttledLog, type HookDeps, type PreConnectHandler } from './hook-deps.ts'

/**
 * First sight of a CONNECT, before aedes checks the protocol version. It records what later hooks need
 * (the CONNECT itself is not passed to authenticate) and never refuses: refusals happen in
 * authenticate, where they get a CONNACK and an audit record.
 *
 * MQTT 5 (and anything but 3.1 / 3.1.1) is refused by aedes itself right after this hook, with CONNACK
 * return code 1 "unacceptable protocol version" followed by a close; that is logged here, not audited
 * (it is a client configuration problem, not an authorization decision), at most once per interval per
 * remote address and version (throttledLog), with the clientId capped.
 */
export function createPreConnect(deps: Pick<HookDeps, 'connections' | 'log' | 'throttle'>): PreConnectHandler {
  const log = deps.log.child({ module: 'broker.auth' })
  return (client, packet, callback) => {
    const remoteAddress = remoteAddressOf(client)
    if (packet.protocolVersion !== MQTT_3_1_1 && packet.protocolVersion !== 3) {
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
    deps.connections.set(client, {
      remoteAddress,
      clientId: packet.clientId,
      keepalive: packet.keepalive ?? 0,
      protocolVersion: packet.protocolVersion ?? MQTT_3_1_1,
      willTopic: packet.will?.topic ?? null,
      clean: packet.clean !== false,
      session: null,
      claim: null,
    })
    callback(null, true)
  }
}
