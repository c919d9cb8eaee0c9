import type { ControlPlane } from './control-plane.ts'
import { isDeviceEvent, type ControlEventListener } from './events.ts'

/** What the AI bridge may know of a device: nothing secret leaves for an AI service. */
export interface DeviceContext {
  tier: string
  group: string | null
  /** the device's desired settings, secrets masked */
  settings: Record<string, unknown>
}

export interface DeviceContexts {
  /** undefined: no such device, or not active */
  get(deviceId: string): Promise<DeviceContext | undefined>
}

/** Entries kept before the cache starts over (a bound, not a tuning knob). */
const MAX_CACHED = 100_000

/**
 * What the AI bridge needs of a device (tier, group, settings with secrets masked), cached per device
 * and dropped on any control event about it, so telemetry does not cost SQLite reads on the broker's
 * event loop.
 */
export function cachedDeviceContexts(
  control: Pick<ControlPlane, 'store' | 'settings'>,
  events: { onEvent(listener: ControlEventListener): () => void },
): DeviceContexts {
  const cache = new Map<string, DeviceContext | undefined>()
  events.onEvent((e) => {
    if (isDeviceEvent(e)) cache.delete(e.deviceId)
  })
  return {
    async get(deviceId) {
      if (cache.has(deviceId)) return cache.get(deviceId)
      const device = await control.store.getDevice(deviceId)
      const context =
        device && device.status === 'active'
          ? { tier: device.tier, group: device.group, settings: (await control.settings.getDevice(deviceId)).desired }
          : undefined
      if (cache.size > MAX_CACHED) cache.clear()
      cache.set(deviceId, context)
      return context
    },
  }
}
