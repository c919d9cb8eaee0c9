import { describe, expect, it } from 'vitest'
import { createDeviceActivity } from '../../../broker/device-activity.ts'
import { fixedClock } from '../../helpers/clock.ts'

const countTimes = (a: ReturnType<typeof createDeviceActivity>, id: string, n: number) => {
  for (let i = 0; i < n; i++) a.count(id)
}

describe('createDeviceActivity (the busiest devices)', () => {
  it('ranks devices by messages in, ties by id, the top n only', () => {
    const a = createDeviceActivity(fixedClock('2026-03-01T12:00:00Z'))
    countTimes(a, 'pump-1', 3)
    countTimes(a, 'valve-2', 5)
    countTimes(a, 'meter-3', 3)
    countTimes(a, 'fan-4', 1)
    expect(a.busiest(3)).toEqual({
      since: '2026-03-01T11:55:00.000Z',
      devices: [
        { deviceId: 'valve-2', messagesIn: 5 },
        { deviceId: 'meter-3', messagesIn: 3 },
        { deviceId: 'pump-1', messagesIn: 3 },
      ],
      untracked: 0,
    })
  })

  it('sums the previous and the current window, and forgets what is older', () => {
    const clock = fixedClock('2026-03-01T12:00:00Z')
    const a = createDeviceActivity(clock, { windowMs: 60_000 })
    countTimes(a, 'pump-1', 4)
    clock.advance('61s')
    countTimes(a, 'pump-1', 2)
    countTimes(a, 'valve-2', 1)
    expect(a.busiest()).toEqual({
      since: '2026-03-01T12:00:00.000Z',
      devices: [
        { deviceId: 'pump-1', messagesIn: 6 },
        { deviceId: 'valve-2', messagesIn: 1 },
      ],
      untracked: 0,
    })
    clock.advance('60s') // the first window is gone
    expect(a.busiest().devices).toEqual([
      { deviceId: 'pump-1', messagesIn: 2 },
      { deviceId: 'valve-2', messagesIn: 1 },
    ])
    clock.advance('5m') // a silent spell: both windows are gone
    expect(a.busiest()).toMatchObject({ since: '2026-03-01T12:06:00.000Z', devices: [], untracked: 0 })
  })

  it('counts at most maxDevices per window; the rest are untracked', () => {
    const a = createDeviceActivity(fixedClock(), { maxDevices: 2 })
    countTimes(a, 'a', 1)
    countTimes(a, 'b', 2)
    countTimes(a, 'c', 3)
    countTimes(a, 'a', 1) // a device already counted is still counted
    expect(a.busiest()).toMatchObject({
      devices: [
        { deviceId: 'a', messagesIn: 2 },
        { deviceId: 'b', messagesIn: 2 },
      ],
      untracked: 3,
    })
  })
})
