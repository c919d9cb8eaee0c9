import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createLiveStream } from '../../../../provisioning/dashboard/live-stream.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { fakeTimers } from '../../../helpers/fake-timers.ts'

/** The part of a ServerResponse the stream uses, recording what it was sent. */
class RecordingResponse extends EventEmitter {
  status = 0
  frames: unknown[] = []
  ended = false
  writeHead(status: number) {
    this.status = status
  }
  write(text: string) {
    const m = /^event: overview\ndata: (.*)\n\n$/.exec(text)
    this.frames.push(m ? JSON.parse(m[1]!) : text)
  }
  end() {
    this.ended = true
    this.emit('close')
  }
}

function harness(options = {}) {
  const clock = fixedClock()
  const timers = fakeTimers(clock)
  const listeners = new Set<() => void>()
  let n = 0
  const signals = {
    onChange(listener: () => void) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
  const live = createLiveStream({ signals, snapshot: async () => ({ n: ++n }), timers, log: pino({ level: 'silent' }) }, options)
  const open = async (alive = () => true) => {
    const res = new RecordingResponse()
    await live.open(res as unknown as ServerResponse, alive)
    return res
  }
  const change = () => {
    for (const l of listeners) l()
  }
  return { live, timers, listeners, open, change }
}

describe('dashboard live stream', () => {
  it('sends a snapshot on open, then one per burst of changes', async () => {
    const { open, change, timers } = harness({ coalesceMs: 250, refreshMs: 60_000 })
    const res = await open()
    expect(res.status).toBe(200)
    expect(res.frames).toEqual([{ n: 1 }])
    change()
    change()
    change()
    await timers.advance('250ms')
    expect(res.frames).toEqual([{ n: 1 }, { n: 2 }])
  })

  it('computes one snapshot per flush for every open stream', async () => {
    const { open, change, timers } = harness({ coalesceMs: 100 })
    const a = await open()
    const b = await open()
    change()
    await timers.advance('100ms')
    expect(a.frames.at(-1)).toEqual({ n: 3 })
    expect(b.frames.at(-1)).toEqual({ n: 3 })
  })

  it('refreshes every refreshMs without a change', async () => {
    const { open, timers } = harness({ refreshMs: 15_000 })
    const res = await open()
    await timers.advance('15s')
    await timers.advance('15s')
    expect(res.frames).toHaveLength(3)
  })

  it('refuses a stream beyond maxClients with GH_DASHBOARD_STREAMS_FULL, and has room again when one closes', async () => {
    const { live, open } = harness({ maxClients: 2 })
    const first = await open()
    await open()
    expect(() => live.checkRoom()).toThrow(expect.objectContaining({ code: 'GH_DASHBOARD_STREAMS_FULL', statusCode: 503 }))
    first.emit('close')
    expect(() => live.checkRoom()).not.toThrow()
  })

  it('ends the stream of a session that has ended, at the next flush', async () => {
    const { open, change, timers } = harness({ coalesceMs: 10 })
    let alive = true
    const res = await open(() => alive)
    alive = false
    change()
    await timers.advance('10ms')
    expect(res.ended).toBe(true)
    expect(res.frames).toHaveLength(1)
  })

  it('follows the signals only while a stream is open, and leaves no timer behind', async () => {
    const { live, open, listeners, timers } = harness()
    expect(listeners.size).toBe(0)
    const a = await open()
    await open()
    expect(listeners.size).toBe(1)
    a.emit('close')
    expect(listeners.size).toBe(1)
    live.close()
    expect(listeners.size).toBe(0)
    expect(timers.pending()).toBe(0)
    expect(live.size()).toBe(0)
  })
})
