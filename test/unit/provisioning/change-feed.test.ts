import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createChangeFeed } from '../../../provisioning/events.ts'
import { InMemoryRegistryStore } from '../../../provisioning/store/in-memory-registry-store.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { settle } from '../../helpers/fake-timers.ts'

const log = pino({ level: 'silent' })
const t0 = new Date('2026-01-01T00:00:00.000Z')

async function setup() {
  const store = new InMemoryRegistryStore()
  await store.appendEvent('device.created', { deviceId: 'before' }, t0) // committed before the feed: never delivered
  const feed = await createChangeFeed({ store, clock: fixedClock(), log })
  const seen: string[] = []
  feed.onEvent((e) => seen.push('deviceId' in e ? e.deviceId : e.type))
  return { store, feed, seen }
}

describe('the change feed', () => {
  it('runs one read at a time: polls asked for together deliver every event once, in order, and a later one reads what came after', async () => {
    const { store, feed, seen } = await setup()
    await store.appendEvent('device.revoked', { deviceId: 'e1' }, t0)
    const first = feed.poll()
    const same = [feed.poll(), feed.poll(), feed.catchUp()]
    await store.appendEvent('device.revoked', { deviceId: 'e2' }, t0) // after the first read began
    const later = feed.poll()
    await Promise.all([first, ...same, later])
    expect(seen).toEqual(['e1', 'e2'])
    expect(await feed.catchUp()).toBe(0)
    expect(feed.position().seq).toBe(await store.lastEventSeq())
  })

  it('lets a catch-up asked for while a read runs wait for that read', async () => {
    let release = () => {}
    const held = new Promise<void>((r) => (release = r))
    /** reads of the events table wait until the test releases them */
    class SlowStore extends InMemoryRegistryStore {
      override async eventsAfter(seq: number, limit: number) {
        await held
        return super.eventsAfter(seq, limit)
      }
    }
    const store = new SlowStore()
    const feed = await createChangeFeed({ store, clock: fixedClock(), log })
    const seen: string[] = []
    feed.onEvent((e) => seen.push('deviceId' in e ? e.deviceId : e.type))
    await store.appendEvent('device.disabled', { deviceId: 'e1' }, t0)
    const running = feed.poll()
    const caughtUp = feed.catchUp().then(() => [...seen])
    await settle() // the catch-up has decided: it waits for the running read
    release()
    expect(await caughtUp).toEqual(['e1'])
    expect(await running).toBe(1)
  })

  it('reads again at the next catch-up after a read that failed', async () => {
    let fail = true
    class FlakyStore extends InMemoryRegistryStore {
      override async eventsAfter(seq: number, limit: number) {
        if (fail) throw new Error('database unreachable')
        return super.eventsAfter(seq, limit)
      }
    }
    const store = new FlakyStore()
    const feed = await createChangeFeed({ store, clock: fixedClock(), log })
    await store.appendEvent('device.revoked', { deviceId: 'e1' }, t0)
    await expect(feed.poll()).rejects.toThrow('database unreachable')
    fail = false
    expect(await feed.catchUp()).toBe(1)
  })
})
