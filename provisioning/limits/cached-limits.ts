import { isDeviceEvent, type ControlEventListener } from '../events.ts'
import type { AppliedLimits } from './limits-service.ts'

export interface CachedLimits {
  /** LimitsService.limitsOf, from the cache while no control event says it changed */
  limitsOf(deviceId: string): Promise<AppliedLimits | null>
}

/** Entries kept before the cache starts over (a bound, not a tuning knob). */
const MAX_CACHED = 100_000

/**
 * The limits that apply to a device (its tier's, its own on top), cached per device for the AI bridge,
 * which asks at every admission (a new window, a throttle re-check): three registry reads each time
 * before. An entry is dropped by any control event about its device (device.updated: its tier, group or
 * own limits changed; disabled, revoked ...) and every entry by `tier.updated`, so a change applies from
 * the change feed's next delivery (200 ms by default), as the broker's own buckets follow it
 * (broker/device-limits.ts). A read that was on its way when an event arrived is answered but not kept:
 * it may predate the change.
 */
export function cachedLimits(
  source: { limitsOf(deviceId: string): Promise<AppliedLimits | null> },
  events: { onEvent(listener: ControlEventListener): () => void },
): CachedLimits {
  const cache = new Map<string, AppliedLimits | null>()
  /** bumped by every event that drops entries: a read started before it is not kept */
  let generation = 0
  events.onEvent((e) => {
    if (e.type === 'tier.updated') {
      generation++
      cache.clear()
    } else if (isDeviceEvent(e)) {
      generation++
      cache.delete(e.deviceId)
    }
  })
  return {
    async limitsOf(deviceId) {
      const cached = cache.get(deviceId)
      if (cached !== undefined) return cached
      const started = generation
      const found = await source.limitsOf(deviceId)
      if (generation === started) {
        if (cache.size >= MAX_CACHED) cache.clear()
        cache.set(deviceId, found)
      }
      return found
    },
  }
}
