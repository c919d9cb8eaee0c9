import { aiBridgeCoreContract } from '../../../contract/ai-bridge-core.contract.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { createFakeAiCore } from '../../../helpers/fake-ai-core.ts'

// The fake the AI bridge tests run on serves its slice as the real core does (mqtt-core-for-ai.test.ts).
aiBridgeCoreContract('the fake AI core', async () => {
  const clock = fixedClock()
  const core = createFakeAiCore(clock)
  let read = 0
  return {
    core,
    clock,
    connect: async (deviceId) => core.connect(deviceId),
    telemetry: (deviceId, payload, ...subtopic) => core.telemetry(deviceId, payload, ...subtopic),
    disconnect: async (deviceId) => core.disconnect(deviceId),
    async nextReceived(deviceId) {
      const next = core.sent.filter((s) => s.deviceId === deviceId)[read++]
      if (!next) throw new Error(`nothing more sent to ${deviceId}`)
      return { topic: next.topic, payload: next.payload, qos: next.qos }
    },
  }
})
