import type { Clock } from '../certs/index.ts'

export interface DeviceActivityOptions {
  /** counts start afresh every windowMs; busiest() reads the window before and the current one; default 5 min */
  windowMs?: number
  /** devices counted per window; messages of further devices count only as untracked; default 10 000 */
  maxDevices?: number
}

export interface BusiestDevices {
  /** the start of the previous window: the counts cover from here to now */
  since: string
  devices: { deviceId: string; messagesIn: number }[]
  /** messages from devices beyond maxDevices in these windows, attributed to none */
  untracked: number
}

/**
 * Messages in per device, for the dashboard's busiest devices (device ids are fine there, never as
 * metric labels). Bounded: a Map of at most maxDevices per window, two windows kept.
 */
export function createDeviceActivity(clock: Clock, options: DeviceActivityOptions = {}) {
  const windowMs = options.windowMs ?? 300_000
  const maxDevices = options.maxDevices ?? 10_000
  const fresh = () => ({ counts: new Map<string, number>(), untracked: 0 })
  let windowStart = clock.now().getTime()
  let current = fresh()
  let previous = fresh()

  function roll(now: number): void {
    const passed = Math.floor((now - windowStart) / windowMs)
    if (passed < 1) return
    previous = passed === 1 ? current : fresh()
    current = fresh()
    windowStart += passed * windowMs
  }

  return {
    /** `atMs`: when the message was read (DevicePublish.receivedAtMs: the packet's one clock read) */
    count(deviceId: string, atMs = clock.now().getTime()): void {
      roll(atMs)
      const n = current.counts.get(deviceId)
      if (n === undefined && current.counts.size >= maxDevices) return void current.untracked++
      current.counts.set(deviceId, (n ?? 0) + 1)
    },

    /** The top n devices by messages in over the previous and the current window, ties by id. */
    busiest(n = 10): BusiestDevices {
      roll(clock.now().getTime())
      const sums = new Map(previous.counts)
      for (const [id, c] of current.counts) sums.set(id, (sums.get(id) ?? 0) + c)
      const devices = [...sums]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, n)
        .map(([deviceId, messagesIn]) => ({ deviceId, messagesIn }))
      return { since: new Date(windowStart - windowMs).toISOString(), devices, untracked: previous.untracked + current.untracked }
    },
  }
}
