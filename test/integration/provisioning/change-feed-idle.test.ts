import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createChangeFeed, type Scheduler } from '../../../provisioning/events.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')

describe("the change feed's interval poll on SQLite", () => {
  it("reads no events while nothing committed (one data_version per tick), and delivers another process's commit at the next tick", async () => {
    const file = join(tempDir(), 'gatehouse.db')
    /** counts the reads of the events table */
    class CountingStore extends SqliteRegistryStore {
      reads = 0
      override eventsAfter(seq: number, limit: number) {
        this.reads++
        return super.eventsAfter(seq, limit)
      }
    }
    const store = new CountingStore(file)
    const other = new SqliteRegistryStore(file) // another process's connection (the operator's CLI)
    onTestFinished(() => {
      store.close()
      other.close()
    })
    let tick: () => unknown = () => {}
    const scheduler: Scheduler = {
      every: (_ms, fn) => {
        tick = fn
        return () => {}
      },
    }
    const feed = await createChangeFeed({ store, clock: fixedClock(), log: pino({ level: 'silent' }), scheduler })
    const seen: string[] = []
    feed.onEvent((e) => seen.push('deviceId' in e ? e.deviceId : e.type))
    feed.start()
    for (let i = 0; i < 5; i++) await tick()
    expect(store.reads).toBe(0)
    expect(feed.status().lastProgressAt).not.toBeNull()

    await other.appendEvent('device.revoked', { deviceId: 'pump-1' }, t0)
    await tick()
    expect(seen).toEqual(['pump-1'])
    expect(store.reads).toBe(1)

    // this process's own commit is read too (onEventsCommitted), and nothing after it
    await store.appendEvent('device.disabled', { deviceId: 'pump-2' }, t0)
    await tick()
    await tick()
    expect(seen).toEqual(['pump-1', 'pump-2'])
  })
})
