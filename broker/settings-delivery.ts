import type { Logger } from 'pino'
import type { MqttCore, Unsubscribe } from './create-mqtt-core.ts'
import type { ControlEvent } from './device-directory.ts'
import { settingsTopic } from './topics.ts'

/** A device's current settings document, as the control plane gives it (secrets in clear). */
export interface SettingsDocument {
  version: number
  settings: Record<string, unknown>
  updatedAt: string
}

/** What settings delivery asks of the control plane; the broker owns this interface (CONVENTIONS.md §3). */
export interface SettingsSource {
  current(deviceId: string): Promise<SettingsDocument | undefined>
  /** a device's report from devices/{id}/settings/reported; throws a coded error on a bad report */
  report(deviceId: string, payload: unknown): Promise<void> | void
}

/**
 * Pushes each device's settings to devices/{id}/settings, QoS 1:
 * - when the device subscribes (after a reconnect, or a broker restart, it gets the current document,
 *   so nothing is lost while it was away), and
 * - when the control plane announces `settings.changed` for it while it is connected.
 * It also hands the device's reports (devices/{id}/settings/reported) to the control plane. Each send
 * reads the current document, so a burst of changes ends with the latest version; devices apply a
 * document only if its version is newer than what they have.
 */
export function attachSettingsDelivery(
  core: Pick<MqttCore, 'isConnected' | 'publishToDevice' | 'onDeviceSubscribe' | 'onDevicePublish'>,
  deps: { source: SettingsSource; events: { onEvent(listener: (e: ControlEvent) => void): Unsubscribe }; log: Logger },
): Unsubscribe {
  const log = deps.log.child({ module: 'broker.settings' })
  let delivered = 0

  async function send(deviceId: string, why: 'subscribe' | 'change'): Promise<void> {
    try {
      const doc = await deps.source.current(deviceId)
      if (!doc || !core.isConnected(deviceId)) return
      await core.publishToDevice(settingsTopic(deviceId), JSON.stringify(doc), { qos: 1 })
      delivered++
      log.debug({ deviceId, version: doc.version, why }, 'settings delivered')
    } catch (err) {
      log.warn({ err, deviceId }, 'settings delivery failed; the device gets them on its next subscribe')
    }
  }

  const offSubscribe = core.onDeviceSubscribe(({ deviceId, filters }) => {
    if (filters.some((f) => f.topic === settingsTopic(deviceId))) void send(deviceId, 'subscribe')
  })
  const offEvents = deps.events.onEvent((event) => {
    if (event.type === 'settings.changed' && core.isConnected(event.deviceId)) void send(event.deviceId, 'change')
  })
  const offPublish = core.onDevicePublish(({ deviceId, kind, payload }) => {
    if (kind !== 'settings.reported') return
    let parsed: unknown
    try {
      parsed = JSON.parse(payload.toString('utf8'))
    } catch {
      log.info({ deviceId, code: 'GH_SETTINGS_INVALID' }, 'settings report is not JSON; ignored')
      return
    }
    Promise.resolve()
      .then(() => deps.source.report(deviceId, parsed))
      .catch((err: { code?: string }) => log.info({ deviceId, code: err?.code, err }, 'settings report refused'))
  })
  return () => {
    offSubscribe()
    offEvents()
    offPublish()
    log.debug({ delivered }, 'settings delivery detached')
  }
}
