import type { Logger } from 'pino'
import type { Clock, Timers } from '../certs/index.ts'
import type { MqttCore, Unsubscribe } from './create-mqtt-core.ts'
import { renewalNoticeTopic } from './topics.ts'

/** What goes on devices/{id}/renewal/notice, as JSON (docs/device-protocol.md). */
export interface RenewalNotice {
  /** the serial of the certificate the session connected with */
  serial: string
  /** when the renewal window opened: from then on devices/{id}/renewal/request is accepted */
  windowOpensAt: string
  /** when it ends: the certificate's notAfter; a device that has not renewed by then is cut off */
  windowEndsAt: string
  notAfter: string
}

/** When a certificate's renewal window opens; the control plane's enrollment service answers (one rule, one place). */
export type RenewalWindowOpens = (certificate: { notBefore: Date; notAfter: Date }) => Date

/** A timer is re-armed at most this far ahead (Node timers overflow past ~24.8 days). */
const MAX_TIMER_MS = 24 * 3600_000

/**
 * Tells a device that its certificate is in its renewal window, on devices/{id}/renewal/notice (QoS 1,
 * not retained), so a device needs no copy of the server's renewalWindow: once per session, when it
 * subscribes to that topic and the window is already open (on connect), or when the window opens
 * while it stays connected (one timer per subscribed session, cleared when it disconnects). The
 * payload is a RenewalNotice. A device renews by publishing to devices/{id}/renewal/request
 * (broker/enrollment.ts).
 */
export function attachRenewalNotices(
  core: Pick<MqttCore, 'onDeviceSubscribe' | 'onDeviceDisconnect' | 'publishToDevice' | 'isSessionLive'>,
  deps: { windowOpens: RenewalWindowOpens; clock: Clock; timers: Timers; log: Logger },
): Unsubscribe {
  const log = deps.log.child({ module: 'broker.renewal-notice' })
  /** per subscribed session: its pending timer (null once sent) */
  const watched = new Map<number, { timer: unknown }>()

  function send(deviceId: string, sessionId: number, notice: RenewalNotice): void {
    watched.set(sessionId, { timer: null })
    if (!core.isSessionLive(sessionId)) return
    core.publishToDevice(renewalNoticeTopic(deviceId), JSON.stringify(notice), { qos: 1 }).then(
      () => log.debug({ deviceId, serial: notice.serial }, 'renewal notice sent'),
      (err: unknown) => log.warn({ err, deviceId }, 'renewal notice not sent'),
    )
  }

  function arm(deviceId: string, sessionId: number, opensAt: Date, notice: RenewalNotice): void {
    const delay = opensAt.getTime() - deps.clock.now().getTime()
    if (delay <= 0) return send(deviceId, sessionId, notice)
    const timer = deps.timers.setTimeout(
      () => {
        if (watched.get(sessionId)?.timer === timer) arm(deviceId, sessionId, opensAt, notice)
      },
      Math.min(delay, MAX_TIMER_MS),
    )
    watched.set(sessionId, { timer })
  }

  const offSubscribe = core.onDeviceSubscribe(({ deviceId, sessionId, filters, certificate }) => {
    const topic = renewalNoticeTopic(deviceId)
    if (watched.has(sessionId) || !filters.some((f) => f.topic === topic)) return
    const opensAt = deps.windowOpens(certificate)
    const notice: RenewalNotice = {
      serial: certificate.serial,
      windowOpensAt: opensAt.toISOString(),
      windowEndsAt: certificate.notAfter.toISOString(),
      notAfter: certificate.notAfter.toISOString(),
    }
    arm(deviceId, sessionId, opensAt, notice)
  })
  const offDisconnect = core.onDeviceDisconnect(({ sessionId }) => {
    const w = watched.get(sessionId)
    if (!w) return
    deps.timers.clearTimeout(w.timer)
    watched.delete(sessionId)
  })
  return () => {
    offSubscribe()
    offDisconnect()
    for (const w of watched.values()) deps.timers.clearTimeout(w.timer)
    watched.clear()
  }
}
