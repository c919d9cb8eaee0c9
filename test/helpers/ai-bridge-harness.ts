import { onTestFinished } from 'vitest'
import { attachAiBridge, type AiBridge } from '../../broker/index.ts'
import type { AiBridgeOptionsInput } from '../../broker/ai-bridge/options.ts'
import type { AiBridgeDeps, DeviceAiContext } from '../../broker/ai-bridge/bridge-deps.ts'
import { createAiUsageService, type AiUsageService } from '../../provisioning/ai-usage/ai-usage-service.ts'
import { InMemoryAiUsageStore } from '../../provisioning/ai-usage/in-memory-ai-usage-store.ts'
import { createRecordingLogger } from './broker-harness.ts'
import { fixedClock, type FixedClock } from './clock.ts'
import { createFakeAiCore, type FakeAiCore } from './fake-ai-core.ts'
import { fakeTimers, type FakeTimers } from './fake-timers.ts'
import { seededRandom } from './random.ts'

export interface AiBridgeHarness {
  bridge: AiBridge
  core: FakeAiCore
  clock: FixedClock
  timers: FakeTimers
  /** provisioning's service on an in-memory store: the bridge's UsageLedger and InsightSink */
  usage: AiUsageService
  logs: Record<string, unknown>[]
  /** sets what deviceContext answers for a device (default: standard tier, no group, no settings) */
  context(deviceId: string, ctx: Partial<DeviceAiContext>): void
  /** device ids deviceContext was asked about, in order */
  contextCalls: string[]
}

/**
 * attachAiBridge on a fake core, a fixed clock with fake timers, a seeded Random and provisioning's
 * AI usage service in memory (disk-free; a test of the openai or webhook provider points it at startHttpStub). Detached when the test finishes.
 */
export function startAiBridge(
  o: {
    options?: AiBridgeOptionsInput
    secret?: (name: string) => string | undefined
    clock?: FixedClock
    limitsOf?: AiBridgeDeps['limitsOf']
  } = {},
): AiBridgeHarness {
  const clock = o.clock ?? fixedClock('2026-03-01T12:00:00Z')
  const timers = fakeTimers(clock)
  const core = createFakeAiCore(clock)
  const usage = createAiUsageService({ store: new InMemoryAiUsageStore(), clock }, { insightsPerDevice: 50 })
  const contexts = new Map<string, DeviceAiContext>()
  const contextCalls: string[] = []
  const { log, records } = createRecordingLogger()
  const bridge = attachAiBridge(
    core,
    {
      clock,
      log,
      usage,
      insights: usage,
      timers,
      random: seededRandom(7),
      async deviceContext(id) {
        contextCalls.push(id)
        return contexts.get(id) ?? { tier: 'standard', group: null, settings: {} }
      },
      ...(o.secret && { secret: o.secret }),
      ...(o.limitsOf && { limitsOf: o.limitsOf }),
    },
    o.options ?? {},
  )
  onTestFinished(() => bridge.detach())
  return {
    bridge,
    core,
    clock,
    timers,
    usage,
    logs: records,
    contextCalls,
    context(id, ctx) {
      contexts.set(id, { tier: 'standard', group: null, settings: {}, ...ctx })
    },
  }
}
