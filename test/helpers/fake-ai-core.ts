import type { DevicePublish } from '../../broker/index.ts'
import type { Clock } from '../../certs/index.ts'
import type { AiBridgeCore } from '../../broker/ai-bridge/ai-bridge.ts'
import { TopicNotDeviceBound } from '../../broker/errors.ts'
import { isBrokerToDeviceKind, parseDeviceTopic, telemetryTopic } from '../../broker/topics.ts'

export interface SentToDevice {
  topic: string
  deviceId: string
  qos: 0 | 1 | 2
  payload: Buffer
  /** the payload, parsed as JSON */
  message: Record<string, unknown>
}

/**
 * The slice of MqttCore the AI bridge uses, without aedes: tests "publish" telemetry as a device would
 * (through the onDevicePublish listeners) and read what the bridge sent back to devices. Held to
 * test/contract/ai-bridge-core.contract.ts with the real createMqttCore.
 */
export interface FakeAiCore extends AiBridgeCore {
  /** the device connects (telemetry() connects it too: only a connected device publishes) */
  connect(deviceId: string): void
  /** a device's accepted PUBLISH on devices/{id}/telemetry[/subtopic...]; objects are sent as JSON */
  telemetry(deviceId: string, payload: unknown, ...subtopic: string[]): void
  readonly sent: SentToDevice[]
  /** what one device received, in order */
  received(deviceId: string): Record<string, unknown>[]
  insightsOf(deviceId: string): Record<string, unknown>[]
  noticesOf(deviceId: string): Record<string, unknown>[]
  disconnect(deviceId: string): void
  listenerCount(): number
}

/** `clock`: the time the core stamps on a device's publish (DevicePublish.receivedAtMs); the bridge's clock in tests */
export function createFakeAiCore(clock: Clock): FakeAiCore {
  const listeners = new Set<(m: DevicePublish) => void>()
  const connected = new Set<string>()
  const sent: SentToDevice[] = []
  const received = (id: string) => sent.filter((s) => s.deviceId === id).map((s) => s.message)
  return {
    sent,
    onDevicePublish(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    isConnected: (id) => connected.has(id),
    async publishToDevice(topic, payload, options = {}) {
      const parsed = parseDeviceTopic(topic)
      if (!parsed || !isBrokerToDeviceKind(parsed.kind)) throw new TopicNotDeviceBound(topic)
      const buf = Buffer.from(payload)
      sent.push({
        topic,
        deviceId: parsed.deviceId,
        qos: options.qos ?? 1,
        payload: buf,
        message: JSON.parse(buf.toString('utf8')) as Record<string, unknown>,
      })
    },
    connect: (id) => void connected.add(id),
    telemetry(deviceId, payload, ...subtopic) {
      connected.add(deviceId)
      const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload))
      const message: DevicePublish = {
        deviceId,
        topic: telemetryTopic(deviceId, ...subtopic),
        kind: 'telemetry',
        subtopic,
        payload: buf,
        qos: 0,
        receivedAtMs: clock.now().getTime(),
      }
      for (const l of listeners) l(message)
    },
    received,
    insightsOf: (id) => received(id).filter((m) => m.type === 'insight'),
    noticesOf: (id) => received(id).filter((m) => m.type === 'throttled'),
    disconnect: (id) => void connected.delete(id),
    listenerCount: () => listeners.size,
  }
}
