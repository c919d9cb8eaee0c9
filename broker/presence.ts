import type { Clock } from '../certs/index.ts'
import type { MqttCore } from './create-mqtt-core.ts'

/** Who is connected now, and when each device was last seen: what the HTTP API shows of a device. */
export interface DevicePresence {
  isConnected(deviceId: string): boolean
  /** now while connected; else the last connect or disconnect this process saw (null: none) */
  lastSeen(deviceId: string): Date | null
}

/** Tracks presence from the broker's connect and disconnect events (in this process only). */
export function trackPresence(
  broker: Pick<MqttCore, 'isConnected' | 'onDeviceConnect' | 'onDeviceDisconnect'>,
  clock: Clock,
): DevicePresence {
  const lastSeen = new Map<string, Date>()
  broker.onDeviceConnect(({ deviceId }) => lastSeen.set(deviceId, clock.now()))
  broker.onDeviceDisconnect(({ deviceId }) => lastSeen.set(deviceId, clock.now()))
  return {
    isConnected: (deviceId) => broker.isConnected(deviceId),
    lastSeen: (deviceId) => (broker.isConnected(deviceId) ? clock.now() : (lastSeen.get(deviceId) ?? null)),
  }
}
