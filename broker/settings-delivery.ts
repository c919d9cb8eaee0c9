import type { Logger } from 'pino'
import { capText, createEventThrottle, systemClock, unsafeInteger, type Clock } from '../certs/index.ts'
import type { MqttCore, Unsubscribe } from './create-mqtt-core.ts'
import type { ControlEvent } from './device-directory.ts'
import { settingsTopic } from './topics.ts'

/** A device's current settings document, as the control plane gives it (secrets in clear). */
export interface SettingsDocument {
  version: number
  settings: Record<string, unknown>
  updatedAt: string
}

/** What settings delivery asks of the control plane; the broker owns this interface (docs/conventions.md §3). */
export interface SettingsSource {
  current(deviceId: string): Promise<SettingsDocument | undefined>
  /** a device's report from devices/{id}/settings/reported; throws a coded error on a bad report */
  report(deviceId: string, payload: unknown): Promise<void> | void
}

/** What settings delivery remembers of a device's live session. */
interface Delivery {
  sessionId: number
  /** the current document was sent in this session (or there is none); only settings.changed clears it */
  sent: boolean
  /** the version sent in this session */
  version: number | null
  /** a read + publish is under way; a change meanwhile sets `dirty` and it sends once more */
  busy: boolean
  dirty: boolean
}

/** Devices whose settings changed while they were away, at most this many remembered (oldest forgotten). */
const MAX_CHANGED_AWAY = 100_000

/**
 * Pushes each device's settings to devices/{id}/settings, QoS 1, once per session and version:
 * - when the device subscribes, the first time in a session (after a reconnect, or a broker restart, it
 *   gets the current document, so nothing is lost while it was away); a repeated SUBSCRIBE in the same
 *   session, with no change since, reads nothing and sends nothing (a device looping on SUBSCRIBE costs
 *   no registry read and no 50 KB publish per packet);
 * - when a device resumes a persistent session (clean=false, session present) without subscribing again,
 *   if its settings changed while it was away (offline catch-up);
 * - when the control plane announces `settings.changed` for it while it is connected.
 * It also hands the device's reports (devices/{id}/settings/reported) to the control plane. Each send
 * reads the current document, so a burst of changes ends with the latest version; devices apply a
 * document only if its version is newer than what they have.
 */
export function attachSettingsDelivery(
  core: Pick<MqttCore, 'isConnected' | 'publishToDevice' | 'onDeviceSubscribe' | 'onDevicePublish' | 'onDeviceDisconnect'>,
  deps: {
    source: SettingsSource
    events: { onEvent(listener: (e: ControlEvent) => void): Unsubscribe }
    log: Logger
    /** for the refused-report log throttle; default the system clock */
    clock?: Clock
  },
): Unsubscribe {
  const log = deps.log.child({ module: 'broker.settings' })
  // A device may send a bad report as often as its publish budget lets it: log it once a minute per
  // device and code, with the number suppressed.
  const refusals = createEventThrottle({ intervalMs: 60_000, maxKeys: 100_000 }, deps.clock ?? systemClock)
  const logRefused = (deviceId: string, code: string | undefined, fields: object, msg: string): void => {
    const hit = refusals.hit(`${deviceId}:${code}:${msg}`)
    if (hit.emit) log.info({ deviceId, code, ...fields, suppressed: hit.suppressed }, msg)
  }
  let delivered = 0
  let repeated = 0
  /** the live session of each connected device that subscribed to its settings */
  const live = new Map<string, Delivery>()
  const changedAway = new Set<string>()

  async function send(deviceId: string, d: Delivery, why: 'subscribe' | 'change' | 'catch-up'): Promise<void> {
    if (d.busy) {
      d.dirty = true
      return
    }
    d.busy = true
    try {
      do {
        d.dirty = false
        const doc = await deps.source.current(deviceId)
        if (live.get(deviceId) !== d || !core.isConnected(deviceId)) return
        const fresh = doc !== undefined && doc.version !== d.version
        if (fresh) await core.publishToDevice(settingsTopic(deviceId), JSON.stringify(doc), { qos: 1 })
        d.sent = true
        if (!fresh) continue
        d.version = doc.version
        delivered++
        log.debug({ deviceId, version: doc.version, why }, 'settings delivered')
      } while (d.dirty)
    } catch (err) {
      log.warn({ err, deviceId }, 'settings delivery failed; the device gets them on its next subscribe')
    } finally {
      d.busy = false
    }
  }

  function rememberChangedAway(deviceId: string): void {
    changedAway.delete(deviceId)
    if (changedAway.size >= MAX_CHANGED_AWAY) changedAway.delete(changedAway.values().next().value as string)
    changedAway.add(deviceId)
    log.debug({ deviceId }, 'settings changed while the device is away or not subscribed; sent when it subscribes or resumes its session')
  }

  const offSubscribe = core.onDeviceSubscribe(({ deviceId, sessionId, filters, restored }) => {
    if (!filters.some((f) => f.topic === settingsTopic(deviceId))) return
    let d = live.get(deviceId)
    if (d?.sessionId !== sessionId) {
      d = { sessionId, sent: false, version: null, busy: false, dirty: false }
      live.set(deviceId, d)
    }
    if (d.sent || d.busy) {
      repeated++
      return
    }
    // A resumed session already got its document, unless it changed since (then it is sent, once).
    if (restored && !changedAway.has(deviceId)) return
    changedAway.delete(deviceId)
    void send(deviceId, d, restored ? 'catch-up' : 'subscribe')
  })
  const offDisconnect = core.onDeviceDisconnect(({ deviceId, sessionId }) => {
    if (live.get(deviceId)?.sessionId === sessionId) live.delete(deviceId)
  })
  const offEvents = deps.events.onEvent((event) => {
    if (event.type !== 'settings.changed') return
    const d = live.get(event.deviceId)
    if (!d || !core.isConnected(event.deviceId)) return rememberChangedAway(event.deviceId)
    if (d.version !== null && event.version <= d.version) return // announced late: this session has it
    d.sent = false
    void send(event.deviceId, d, 'change')
  })
  const offPublish = core.onDevicePublish(({ deviceId, kind, payload }) => {
    if (kind !== 'settings.reported') return
    const text = payload.toString('utf8')
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      logRefused(deviceId, 'GH_SETTINGS_INVALID', {}, 'settings report is not JSON; ignored')
      return
    }
    // an integer JSON.parse rounded would be stored as another number than the device reported
    const unsafe = unsafeInteger(text)
    if (unsafe) {
      const err = `the integer ${unsafe.literal} at ${unsafe.path} is beyond ±(2^53 - 1): send it as a string`
      logRefused(deviceId, 'GH_JSON_INTEGER_UNSAFE', { err }, 'settings report refused')
      return
    }
    Promise.resolve()
      .then(() => deps.source.report(deviceId, parsed))
      .catch((err: { code?: string; message?: string }) =>
        logRefused(deviceId, err?.code, { err: capText(String(err?.message ?? err)) }, 'settings report refused'),
      )
  })
  return () => {
    offSubscribe()
    offDisconnect()
    offEvents()
    offPublish()
    log.debug({ delivered, repeated }, 'settings delivery detached')
  }
}
