import { parseDeviceTopic } from '../topics.ts'
import type { AuthorizeForwardHandler, HookDeps } from './hook-deps.ts'

/**
 * What an app gets of what it subscribed to (docs/device-protocol.md "Apps"): its filters may be
 * wildcards over every device (`devices/+/telemetry/#`), so each message is checked on its way to an
 * app, by the group of the device it is about, as the broker knows it from that device's live session
 * here. A message about a device without a live session on this broker (an insight for a device that
 * is offline, a device on another node of a cluster) is not forwarded to an app with groups: unknown
 * is outside. Devices and claim sessions are not filtered here: their subscriptions are exact topics.
 */
export function createAuthorizeForward(deps: Pick<HookDeps, 'connections' | 'sessions'>): AuthorizeForwardHandler {
  return (client, packet) => {
    const app = deps.connections.get(client)?.app
    if (!app) return packet
    if (app.groups === null) return packet
    const topic = parseDeviceTopic(packet.topic)
    const group = topic ? deps.sessions.get(topic.deviceId)?.group : null
    return group != null && app.groups.has(group) ? packet : null
  }
}
