import { describe, expect, it, onTestFinished } from 'vitest'
import { attachAiBridge } from '../../../broker/index.ts'
import { systemClock, systemTimers } from '../../../certs/index.ts'
import { createAiUsageService } from '../../../provisioning/ai-usage/ai-usage-service.ts'
import { InMemoryAiUsageStore } from '../../../provisioning/ai-usage/in-memory-ai-usage-store.ts'
import { createRecordingLogger, startBroker } from '../../helpers/broker-harness.ts'
import { makeBrokerPki } from '../../helpers/broker-pki.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'

describe('AI bridge on a real broker', () => {
  it('a device publishes telemetry over mTLS and receives the insight (then one throttle notice) on devices/{id}/insights', async () => {
    const pki = await makeBrokerPki('AI Bridge Test')
    const harness = await startBroker(pki.serverTls)
    const creds = await pki.device('sensor-1')
    harness.directory.addCertificate('sensor-1', creds.serial)
    const usage = createAiUsageService({ store: new InMemoryAiUsageStore(), clock: systemClock })
    const bridge = attachAiBridge(
      harness.broker,
      {
        clock: systemClock,
        timers: systemTimers,
        log: createRecordingLogger().log,
        usage,
        insights: usage,
        deviceContext: async () => ({ tier: 'standard', group: null, settings: { thresholds: { temp: { max: 80 } } } }),
      },
      {
        windowing: { messages: 1, seconds: 0 },
        tiers: { standard: { provider: 'local', limits: { requestsPerMinute: 1, burst: 1, dailyRequests: 100, dailyTokens: 1000 } } },
      },
    )
    onTestFinished(() => bridge.detach())

    const device = await connectDevice(harness.port, creds)
    const messages: Record<string, unknown>[] = []
    device.on('message', (topic, payload) => {
      if (topic === 'devices/sensor-1/insights') messages.push(JSON.parse(payload.toString()) as Record<string, unknown>)
    })
    await device.subscribeAsync('devices/sensor-1/insights', { qos: 1 })
    await device.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ temp: 85, owner: 'ann@example.com' }), { qos: 1 })
    await device.publishAsync('devices/sensor-1/telemetry/engine', JSON.stringify({ rpm: 900 }), { qos: 1 })

    await waitFor(() => messages.length >= 2, 5000, 'the insight and the throttle notice')
    expect(messages[0]).toMatchObject({
      type: 'insight',
      deviceId: 'sensor-1',
      provider: 'local',
      anomalies: [{ kind: 'threshold', metric: 'temp', value: 85 }],
      usage: { requests: 1, totalTokens: 0 },
    })
    expect(messages[1]).toMatchObject({ type: 'throttled', deviceId: 'sensor-1', reason: 'rate' })
    expect(Date.parse(String(messages[1]?.retryAt))).toBeGreaterThan(Date.now())
    expect(await usage.listInsights('sensor-1')).toHaveLength(1)
    expect(bridge.stats()).toMatchObject({ received: 2, insights: 1, throttled: 1, throttleNotices: 1 })
  })
})
