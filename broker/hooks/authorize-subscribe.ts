import { canSubscribeTo } from '../topic-policy.ts'
import { BROKER_ACTOR, principalOf, throttledAudit, throttledLog, type AuthorizeSubscribeHandler, type HookDeps } from './hook-deps.ts'

/**
 * Authorization of SUBSCRIBE filters: topic-policy.ts decides, within the session's grants. A refused
 * filter is negated (aedes then answers SUBACK 0x80 for it and keeps the connection; the other filters
 * of the packet still count).
 *
 * A device's refusals are logged at info, at most once per interval per device with a suppressed count;
 * they are not audited (a device cannot gain anything from a refused SUBSCRIBE). A claim session's are
 * also audited as `subscribe.refused` (throttled the same way, per claim): a claim is shared by a whole
 * batch, and one holder reaching for another session's response topic (where certificates are
 * delivered) is what an operator needs to see.
 *
 * aedes itself rejects malformed filters (empty, '#' not last, '+' inside a level) before this hook,
 * by closing the connection.
 */
export function createAuthorizeSubscribe(deps: HookDeps): AuthorizeSubscribeHandler {
  const log = deps.log.child({ module: 'broker.authz' })

  return (client, sub, callback) => {
    const ctx = deps.connections.get(client)
    const principal = principalOf(ctx)
    const decision = principal ? canSubscribeTo(principal.session.grants, sub.topic) : ({ ok: false, reason: 'not-authenticated' } as const)
    if (decision.ok) return callback(null, sub)

    if (ctx?.claim && principal) {
      const { claim } = ctx
      throttledAudit(
        deps,
        log,
        `subscribe.refused:${principal.subject}`,
        {
          actor: BROKER_ACTOR,
          action: 'subscribe.refused',
          subject: principal.subject,
          details: {
            topic: sub.topic,
            reason: decision.reason,
            clientId: claim.clientId,
            serial: claim.serial,
            remoteAddress: claim.remoteAddress,
          },
        },
        { ...principal.fields, serial: claim.serial, remoteAddress: claim.remoteAddress, topic: sub.topic, reason: decision.reason },
        'subscribe refused',
      )
      return callback(null, null)
    }

    const deviceId = ctx?.session?.deviceId ?? null
    throttledLog(
      deps,
      log,
      `subscribe.refused:${deviceId ?? client.id}`,
      { deviceId, clientId: client.id, topic: sub.topic, reason: decision.reason },
      'subscribe refused',
    )
    callback(null, null)
  }
}
