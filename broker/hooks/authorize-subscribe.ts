import { canSubscribe } from '../topic-policy.ts'
import type { AuthorizeSubscribeHandler, HookDeps } from './hook-deps.ts'

/**
 * Authorization of SUBSCRIBE filters: topic-policy.ts decides. A refused filter is negated (aedes then
 * answers SUBACK 0x80 for it and keeps the connection; the other filters of the packet still count).
 * Refusals are logged at info, at most once per interval per device with a suppressed count; they are
 * not audited (a device cannot gain anything from a refused SUBSCRIBE).
 *
 * aedes itself rejects malformed filters (empty, '#' not last, '+' inside a level) before this hook,
 * by closing the connection.
 */
export function createAuthorizeSubscribe(deps: HookDeps): AuthorizeSubscribeHandler {
  const log = deps.log.child({ module: 'broker.authz' })

  return (client, sub, callback) => {
    const session = deps.connections.get(client)?.session
    const decision = session ? canSubscribe(session.deviceId, sub.topic) : ({ ok: false, reason: 'not-authenticated' } as const)
    if (decision.ok) return callback(null, sub)

    const deviceId = session?.deviceId ?? null
    const hit = deps.throttle.hit(`subscribe.refused:${deviceId ?? client.id}`)
    if (hit.emit) {
      log.info(
        { deviceId, clientId: client.id, topic: sub.topic, reason: decision.reason, suppressed: hit.suppressed },
        'subscribe refused',
      )
    }
    callback(null, null)
  }
}
