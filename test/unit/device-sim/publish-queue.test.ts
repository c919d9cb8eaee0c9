import { describe, expect, it } from 'vitest'
import { createPublishQueue, type Outgoing } from '../../../device-sim/publish-queue.ts'

const msg = (n: number, kind: Outgoing['kind'] = 'telemetry'): Outgoing => ({ topic: 't', payload: String(n), qos: 1, kind })

/** A connection that records what it was given and acknowledges on demand. */
function connection() {
  const pending: { m: Outgoing; done: (err?: Error) => void }[] = []
  const sent: string[] = []
  return {
    send: (m: Outgoing, done: (err?: Error) => void) => {
      sent.push(m.payload)
      pending.push({ m, done })
    },
    ackAll: () => {
      for (const p of pending.splice(0)) p.done()
    },
    pending,
    sent,
  }
}

describe('device-sim publish queue', () => {
  it('keeps messages while offline and sends them in order once attached, at most maxInFlight at a time', () => {
    const q = createPublishQueue({ maxInFlight: 2 })
    for (let i = 1; i <= 5; i++) q.push(msg(i))
    expect(q.stats()).toMatchObject({ queued: 5, sent: 0 })
    const c = connection()
    q.attach(c.send)
    expect(c.sent).toEqual(['1', '2'])
    c.ackAll()
    expect(c.sent).toEqual(['1', '2', '3', '4'])
    c.ackAll()
    c.ackAll()
    expect(c.sent).toEqual(['1', '2', '3', '4', '5'])
    expect(q.stats()).toEqual({ queued: 0, inFlight: 0, sent: 5, acked: 5, dropped: 0 })
  })

  it('puts unacknowledged messages back in front, in order, when the connection goes; the next one sends them first', () => {
    const q = createPublishQueue({ maxInFlight: 3 })
    const first = connection()
    q.attach(first.send)
    for (let i = 1; i <= 5; i++) q.push(msg(i))
    first.pending[0]?.done() // 1 acked
    q.detach()
    first.ackAll() // late callbacks of the old connection are ignored
    const second = connection()
    q.attach(second.send)
    expect(second.sent).toEqual(['2', '3', '4'])
    second.ackAll()
    second.ackAll()
    expect(second.sent).toEqual(['2', '3', '4', '5'])
    expect(q.stats()).toMatchObject({ sent: 5, acked: 5, queued: 0, inFlight: 0 })
  })

  it('pause stops new sends while in-flight ones are still acknowledged, and drained() says when none are left', async () => {
    const q = createPublishQueue()
    const c = connection()
    q.attach(c.send)
    q.push(msg(1))
    q.pause()
    q.push(msg(2))
    expect(c.sent).toEqual(['1'])
    const drained = q.drained(1000)
    c.ackAll()
    expect(await drained).toBe(true)
    expect(q.stats()).toMatchObject({ queued: 1, acked: 1 })
    q.push(msg(3))
    expect(await createPublishQueue().drained(10)).toBe(true)
  })

  it('is bounded: when full it drops the oldest telemetry (not reports) and counts it', () => {
    const q = createPublishQueue({ maxQueued: 3 })
    q.push(msg(1, 'report'))
    q.push(msg(2))
    q.push(msg(3))
    q.push(msg(4))
    const c = connection()
    q.attach(c.send)
    c.ackAll()
    c.ackAll()
    expect(c.sent).toEqual(['1', '3', '4'])
    expect(q.stats().dropped).toBe(1)
  })

  it('drained() gives up after its bound', async () => {
    const q = createPublishQueue()
    q.attach(connection().send)
    q.push(msg(1))
    expect(await q.drained(20)).toBe(false)
  })
})
