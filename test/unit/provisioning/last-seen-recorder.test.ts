import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createLastSeenRecorder } from '../../../provisioning/last-seen-recorder.ts'
import { InMemoryRegistryStore } from '../../../provisioning/store/in-memory-registry-store.ts'
import type { LastSeen } from '../../../provisioning/store/registry-store.ts'
import { device } from '../../contract/registry-store.contract.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'

async function setup() {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  const timers = fakeTimers(clock)
  const store = new InMemoryRegistryStore()
  for (const id of ['a', 'b']) await store.insertDevice(device(id))
  const batches: LastSeen[][] = []
  let failNext = false
  const recording = {
    async recordLastSeen(seen: readonly LastSeen[]) {
      if (failNext) {
        failNext = false
        throw Object.assign(new Error('disk I/O error'), { code: 'GH_STORE_WRITE_FAILED' })
      }
      batches.push([...seen])
      await store.recordLastSeen(seen)
    },
  }
  const recorder = createLastSeenRecorder({ store: recording, clock, timers, log: pino({ level: 'silent' }) }, { flushMs: 60_000 })
  return { clock, timers, store, recorder, batches, failOnce: () => void (failNext = true) }
}

describe('createLastSeenRecorder', () => {
  it('writes nothing on a sighting, then every device seen in the minute in one batch, with its latest time', async () => {
    const { clock, timers, store, recorder, batches } = await setup()
    recorder.seen('a')
    clock.advance('10s')
    recorder.seen('b')
    clock.advance('20s')
    recorder.seen('a') // reconnects inside the minute cost no extra write
    expect(batches).toEqual([])
    await timers.advance('30s')
    expect(batches).toEqual([
      [
        { deviceId: 'a', at: new Date('2026-03-01T00:00:30Z') },
        { deviceId: 'b', at: new Date('2026-03-01T00:00:10Z') },
      ],
    ])
    expect(await store.lastSeen('a')).toEqual(new Date('2026-03-01T00:00:30Z'))
    expect(timers.pending()).toBe(0) // idle: no timer until the next sighting
  })

  it('writes a device at most once per minute however often it reconnects', async () => {
    const { clock, timers, recorder, batches } = await setup()
    for (let i = 0; i < 120; i++) {
      recorder.seen('a')
      clock.advance('1s')
      await timers.advance(0)
    }
    await timers.advance('60s')
    expect(batches.length).toBe(2)
    expect(batches.every((b) => b.length === 1)).toBe(true)
  })

  it('keeps a failed batch and writes it with the next one', async () => {
    const { timers, store, recorder, batches, failOnce } = await setup()
    recorder.seen('a')
    failOnce()
    await timers.advance('60s')
    expect(await store.lastSeen('a')).toBeNull()
    await timers.advance('60s')
    expect(batches).toEqual([[{ deviceId: 'a', at: new Date('2026-03-01T00:00:00Z') }]])
  })

  it('writes what is pending on close, then ignores sightings', async () => {
    const { timers, store, recorder } = await setup()
    recorder.seen('b')
    await recorder.close()
    expect(await store.lastSeen('b')).toEqual(new Date('2026-03-01T00:00:00Z'))
    recorder.seen('a')
    await recorder.flush()
    expect(await store.lastSeen('a')).toBeNull()
    expect(timers.pending()).toBe(0)
  })
})
