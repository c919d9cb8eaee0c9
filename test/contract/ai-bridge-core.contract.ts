import { describe, expect, it } from 'vitest'
import type { AiBridgeCore } from '../../broker/ai-bridge/ai-bridge.ts'
import type { DevicePublish } from '../../broker/index.ts'
import type { Clock } from '../../certs/index.ts'
import { waitFor } from '../helpers/wait.ts'

export interface ReceivedByDevice {
  topic: string
  payload: Buffer
  qos: number
}

/** An AiBridgeCore with devices that connect, publish telemetry and receive what the core sends them. */
export interface AiCoreFixture {
  core: AiBridgeCore
  /** the core's clock (a fixed one): it stamps each publish's receivedAtMs */
  clock: Clock
  /** the device connects, subscribed to its insights */
  connect(deviceId: string): Promise<void>
  /** the device publishes on devices/{id}/telemetry[/subtopic...] at QoS 0 */
  telemetry(deviceId: string, payload: Buffer, ...subtopic: string[]): void
  /** the device goes away */
  disconnect(deviceId: string): Promise<void>
  /** the next message the device receives */
  nextReceived(deviceId: string): Promise<ReceivedByDevice>
}

/**
 * What the AI bridge may rely on from its core (AiBridgeCore: a slice of MqttCore), whoever serves it:
 * the real createMqttCore and test/helpers/fake-ai-core.ts, both in unit/. `make` returns a fresh core
 * with no device connected.
 */
export function aiBridgeCoreContract(name: string, make: () => Promise<AiCoreFixture>): void {
  describe(`${name} (AiBridgeCore contract)`, () => {
    it('reports a device’s telemetry to its listeners, until each unsubscribes', async () => {
      const f = await make()
      await f.connect('pump-7')
      const first: DevicePublish[] = []
      const second: DevicePublish[] = []
      const off = f.core.onDevicePublish((m) => first.push(m))
      f.core.onDevicePublish((m) => second.push(m))
      f.telemetry('pump-7', Buffer.from('{"t":21.5}'), 'engine')
      await waitFor(() => first.length === 1 && second.length === 1, 2000, 'the telemetry')
      expect(first).toEqual([
        {
          deviceId: 'pump-7',
          topic: 'devices/pump-7/telemetry/engine',
          kind: 'telemetry',
          subtopic: ['engine'],
          payload: Buffer.from('{"t":21.5}'),
          qos: 0,
          receivedAtMs: f.clock.now().getTime(),
        },
      ])
      off()
      f.telemetry('pump-7', Buffer.from('{"t":22}'))
      await waitFor(() => second.length === 2, 2000, 'the second telemetry') // the marker: the other listener has it
      expect(second[1]).toMatchObject({ topic: 'devices/pump-7/telemetry', subtopic: [] })
      expect(first).toHaveLength(1)
    })

    it('says a device is connected from its connect until it goes away, and never for a device never seen', async () => {
      const f = await make()
      expect(f.core.isConnected('pump-7')).toBe(false)
      await f.connect('pump-7')
      expect(f.core.isConnected('pump-7')).toBe(true)
      await f.disconnect('pump-7')
      await waitFor(() => !f.core.isConnected('pump-7'), 2000, 'the disconnect')
    })

    it('sends to a device on its insights topic, at QoS 1 unless told otherwise', async () => {
      const f = await make()
      await f.connect('pump-7')
      await f.core.publishToDevice('devices/pump-7/insights', Buffer.from('{"type":"insight"}'))
      expect(await f.nextReceived('pump-7')).toEqual({
        topic: 'devices/pump-7/insights',
        payload: Buffer.from('{"type":"insight"}'),
        qos: 1,
      })
      await f.core.publishToDevice('devices/pump-7/insights', '{"type":"throttled"}', { qos: 0 })
      expect(await f.nextReceived('pump-7')).toEqual({
        topic: 'devices/pump-7/insights',
        payload: Buffer.from('{"type":"throttled"}'),
        qos: 0,
      })
    })

    it.each(['devices/pump-7/telemetry', 'devices/pump-7/settings/reported', 'devices/+/insights', 'elsewhere/pump-7/insights'])(
      'refuses to send on %s, a topic the broker does not send to devices',
      async (topic) => {
        const f = await make()
        await expect(f.core.publishToDevice(topic, Buffer.from('{}'))).rejects.toMatchObject({ code: 'GH_BROKER_TOPIC_INVALID' })
      },
    )
  })
}
