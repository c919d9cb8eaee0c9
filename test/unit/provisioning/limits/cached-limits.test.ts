import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { limitsPolicy, loadConfig } from '../../../../config.ts'
import { cachedLimits, createChangeFeed } from '../../../../provisioning/index.ts'
import { createLimitsService } from '../../../../provisioning/limits/limits-service.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'

const log = pino({ level: 'silent' })

async function setup() {
  const clock = fixedClock('2026-03-01T12:00:00Z')
  const store = new SqliteRegistryStore(':memory:')
  onTestFinished(() => store.close())
  for (const id of ['d1', 'd2'])
    await store.insertDevice({ id, group: null, tier: 'standard', status: 'active', createdAt: clock.now(), updatedAt: clock.now() })
  const limits = createLimitsService({ store, limits: store.limits, clock, log }, limitsPolicy(loadConfig({ dataDir: '/nonexistent' }, {})))
  const feed = await createChangeFeed({ store, clock, log })
  await feed.poll() // the feed starts after what is already there
  /** the registry reads the cache let through */
  let reads = 0
  const counted = { limitsOf: (id: string) => (reads++, limits.limitsOf(id)) }
  return { limits, feed, counted, reads: () => reads }
}

describe('cachedLimits (the AI bridge reads a device limits once, then after each change)', () => {
  it("serves a device's limits from memory until the change feed delivers a change to its own limits", async () => {
    const { limits, feed, counted, reads } = await setup()
    const cached = cachedLimits(counted, feed)
    expect(await cached.limitsOf('d1')).toMatchObject({ tier: 'standard', ai: {} })
    expect(await cached.limitsOf('d1')).toMatchObject({ ai: {} })
    expect(await cached.limitsOf('nobody')).toBeNull()
    expect(await cached.limitsOf('nobody')).toBeNull()
    expect(reads()).toBe(2) // one per device, unknown ones too

    await limits.setDevice('d1', { ai: { dailyRequests: 6 } }, 'operator:test')
    expect(await cached.limitsOf('d1')).toMatchObject({ ai: {} }) // not delivered yet
    await feed.poll() // device.updated
    expect(await cached.limitsOf('d1')).toMatchObject({ ai: { dailyRequests: 6 } })
    expect(reads()).toBe(3)
  })

  it("applies a tier's change to every cached device of it at the feed's next delivery", async () => {
    const { limits, feed, counted } = await setup()
    const cached = cachedLimits(counted, feed)
    for (const id of ['d1', 'd2']) expect(await cached.limitsOf(id)).toMatchObject({ ai: {} })
    await limits.setTier('standard', { ai: { dailyRequests: 4 } }, 'operator:test')
    await feed.poll() // tier.updated
    for (const id of ['d1', 'd2']) expect(await cached.limitsOf(id)).toMatchObject({ ai: { dailyRequests: 4 } })
  })

  it('does not keep a read that was on its way when a change arrived (it may predate the change)', async () => {
    const { limits, feed } = await setup()
    let release: () => void = () => {}
    const held = new Promise<void>((r) => (release = r))
    let reads = 0
    const slow = {
      limitsOf: async (id: string) => (reads++ === 0 ? (await held, { ...(await limits.limitsOf(id))!, ai: {} }) : limits.limitsOf(id)),
    }
    const cached = cachedLimits(slow, feed)
    const first = cached.limitsOf('d1') // answers what it read before the change
    await limits.setDevice('d1', { ai: { dailyRequests: 6 } }, 'operator:test')
    await feed.poll()
    release()
    expect(await first).toMatchObject({ ai: {} })
    expect(await cached.limitsOf('d1')).toMatchObject({ ai: { dailyRequests: 6 } }) // read again, not the stale answer
  })
})
