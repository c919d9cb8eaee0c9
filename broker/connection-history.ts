import type { Clock } from '../certs/index.ts'
import type { MqttCore } from './create-mqtt-core.ts'

export interface ConnectionHistoryOptions {
  /** events kept per device, newest first; default 20 */
  perDevice?: number
  /** devices tracked; past it the least recently active device is forgotten; default 10 000 */
  maxDevices?: number
}

export interface ConnectionEvent {
  at: string
  event: 'connect' | 'disconnect'
  remoteAddress: string | null
  serial: string
  /** why the session closed (`client`, `device.disabled`, `packet-too-large` …, as the 'device disconnected' log); null for a connect */
  reason: string | null
}

/**
 * The last connects and disconnects of each device, from the broker's events (in this process only):
 * a ring of perDevice events per device, for at most maxDevices devices (a Map in LRU order).
 */
export function trackConnectionHistory(
  broker: Pick<MqttCore, 'onDeviceConnect' | 'onDeviceDisconnect'>,
  clock: Clock,
  options: ConnectionHistoryOptions = {},
): { history(deviceId: string): ConnectionEvent[]; close(): void } {
  const perDevice = options.perDevice ?? 20
  const maxDevices = options.maxDevices ?? 10_000
  /** device id -> its events, oldest first; Map order: least recently active first */
  const byDevice = new Map<string, ConnectionEvent[]>()

  function record(deviceId: string, event: Omit<ConnectionEvent, 'at'>): void {
    const events = byDevice.get(deviceId) ?? []
    byDevice.delete(deviceId)
    byDevice.set(deviceId, events)
    events.push({ at: clock.now().toISOString(), ...event })
    if (events.length > perDevice) events.shift()
    if (byDevice.size > maxDevices) byDevice.delete(byDevice.keys().next().value as string)
  }

  const offs = [
    broker.onDeviceConnect((c) => record(c.deviceId, { event: 'connect', remoteAddress: c.remoteAddress, serial: c.serial, reason: null })),
    broker.onDeviceDisconnect((c) =>
      record(c.deviceId, { event: 'disconnect', remoteAddress: c.remoteAddress, serial: c.serial, reason: c.reason }),
    ),
  ]
  return {
    /** newest first */
    history: (deviceId) => [...(byDevice.get(deviceId) ?? [])].reverse(),
    close() {
      for (const off of offs) off()
    },
  }
}
