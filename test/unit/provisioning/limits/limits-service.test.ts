import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { limitsPolicy, loadConfig } from '../../../../config.ts'
import { createLimitsService } from '../../../../provisioning/limits/limits-service.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'

const log = pino({ level: 'silent' })

describe('LimitsService.limitsOf', () => {
  it('takes the tier and group a CONNECT just read from the directory instead of reading the device again, and still merges its own values', async () => {
    const clock = fixedClock('2026-03-01T12:00:00Z')
    const store = new SqliteRegistryStore(':memory:')
    onTestFinished(() => store.close())
    await store.insertDevice({
      id: 'd1',
      group: 'pumps',
      tier: 'standard',
      status: 'active',
      createdAt: clock.now(),
      updatedAt: clock.now(),
    })
    /** the registry's device reads, counted on the real store */
    let deviceReads = 0
    const counted = new Proxy(store, {
      get(target, key) {
        if (key === 'getDevice') return (id: string) => (deviceReads++, target.getDevice(id))
        const value: unknown = Reflect.get(target, key)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const limits = createLimitsService(
      { store: counted, limits: store.limits, clock, log },
      limitsPolicy(loadConfig({ dataDir: '/nonexistent' }, {})),
    )
    await limits.setTier('premium', { broker: { publishRate: { ratePerSecond: 50 } } }, 'operator:test')
    await limits.setDevice('d1', { broker: { publishRate: { burst: 200 } } }, 'operator:test')
    deviceReads = 0

    // as the broker asks at CONNECT: the directory answered tier premium (the device's, as of its read)
    expect(await limits.limitsOf('d1', { tier: 'premium', group: 'pumps' })).toEqual({
      tier: 'premium',
      group: 'pumps',
      broker: { publishRate: { ratePerSecond: 50, burst: 200 } },
      ai: {},
    })
    expect(deviceReads).toBe(0)

    // without it (a live session's change, the AI bridge) the device is read: its stored tier applies
    expect(await limits.limitsOf('d1')).toEqual({ tier: 'standard', group: 'pumps', broker: { publishRate: { burst: 200 } }, ai: {} })
    expect(deviceReads).toBe(1)
  })
})
