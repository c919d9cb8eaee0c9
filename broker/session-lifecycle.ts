import type { Logger } from 'pino'
import { normalizeSerial, type Clock, type Timers } from '../certs/index.ts'
import type { AppSession, AppSessionRegistry } from './app-sessions.ts'
import { claimSessionEnded, type ClaimSession, type ClaimSessionRegistry } from './claim-sessions.ts'
import type { ControlEvent, DeviceDirectory } from './device-directory.ts'
import { BROKER_ACTOR, claimSubject } from './hooks/hook-deps.ts'
import type { BrokerLimits } from './limits.ts'
import { deviceSessionEnded, endAt, type Session, type SessionRegistry } from './sessions.ts'

export interface SessionLifecycleDeps {
  directory: DeviceDirectory
  sessions: SessionRegistry
  claimSessions: ClaimSessionRegistry
  /** app sessions: closed on app.revoked and when their certificate expires; absent: none */
  appSessions?: AppSessionRegistry
  clock: Clock
  timers: Timers
  log: Logger
  limits: Pick<BrokerLimits, 'sessionSweepMs'>
  /** device.revoked / device.disabled: after its live session (if any) is closed; drops its stored session */
  onDeviceEnded?(deviceId: string): void
}

export interface SessionLifecycle {
  /** Closes a device session (audited as session.closed); no-op when it is already closed. */
  closeSession(session: Session, reason: string, details?: Record<string, unknown>): void
  closeClaimSession(session: ClaimSession, reason: string): void
  /**
   * A claim session that just connected: closed exactly at its expiresAt by a timer of its own (the
   * documented "at most claimSessionSeconds"), not up to a sweep interval later.
   */
  watchClaimSession(session: ClaimSession): void
  /** One sweep now; the timer runs it every limits.sessionSweepMs. */
  sweep(): void
  /** Stops the sweep and stops listening to the directory. */
  stop(): void
}

/** Control events that end device sessions at once; certificate events only the session on that serial. */
const CLOSING_EVENTS: ReadonlySet<ControlEvent['type']> = new Set(['device.revoked', 'device.disabled', 'certificate.revoked'])

/**
 * How sessions end when the broker ends them:
 * - at once, on control events: device.revoked / device.disabled / certificate.revoked (device
 *   sessions), claim.revoked (the claim's sessions), app.revoked (the app's session; with a serial, only
 *   a session on that certificate);
 * - at their end, by a sweep every limits.sessionSweepMs: a device session when its certificate
 *   expires or its renewal overlap ends (`certificate.superseded` brings the end forward to
 *   supersededAt, and closes at once only when that is already past), a claim session after
 *   limits.claimSessionSeconds (or when its certificate expires, if that comes first; a claim session
 *   also has a timer of its own at claimSessionSeconds, so that it never outlives it).
 * Nothing is cached from events: they only close sessions or bring their end forward. device.revoked and
 * device.disabled also drop the device's stored (persistent) session, through onDeviceEnded.
 */
export function startSessionLifecycle(deps: SessionLifecycleDeps): SessionLifecycle {
  const { directory, sessions, claimSessions, clock, timers, log } = deps
  let stopped = false
  let timer: unknown = null
  const claimTimers = new Set<unknown>()

  function closeSession(session: Session, reason: string, details: Record<string, unknown> = {}): void {
    if (session.client.closed) return
    session.closedBy = reason
    directory.audit({
      actor: BROKER_ACTOR,
      action: 'session.closed',
      subject: session.deviceId,
      details: { reason, serial: session.serial, remoteAddress: session.remoteAddress, ...details },
    })
    log.info({ deviceId: session.deviceId, serial: session.serial, remoteAddress: session.remoteAddress, reason }, 'session closed')
    session.client.close()
  }

  function closeAppSession(session: AppSession, reason: string): void {
    if (session.client.closed) return
    session.closedBy = reason
    directory.audit({
      actor: BROKER_ACTOR,
      action: 'session.closed',
      subject: session.clientId,
      details: { reason, serial: session.serial, remoteAddress: session.remoteAddress },
    })
    log.info({ appName: session.name, serial: session.serial, remoteAddress: session.remoteAddress, reason }, 'app session closed')
    session.client.close()
  }

  function closeClaimSession(session: ClaimSession, reason: string): void {
    if (session.client.closed) return
    session.closedBy = reason
    directory.audit({
      actor: BROKER_ACTOR,
      action: 'session.closed',
      subject: claimSubject(session.claimId),
      details: { reason, serial: session.serial, clientId: session.clientId, remoteAddress: session.remoteAddress },
    })
    log.info(
      { claimId: session.claimId, clientId: session.clientId, serial: session.serial, remoteAddress: session.remoteAddress, reason },
      'claim session closed',
    )
    session.client.close()
  }

  /** A serial from an event; null (every session of the device or app: fail closed) when unreadable. */
  function serialOf(event: ControlEvent & { serial: string }): string | null {
    try {
      return normalizeSerial(event.serial)
    } catch (err) {
      log.warn(
        { err, deviceId: 'deviceId' in event ? event.deviceId : undefined, event: event.type },
        'control event with unreadable serial',
      )
      return null
    }
  }

  function supersededAtOf(event: Extract<ControlEvent, { type: 'certificate.superseded' }>): Date {
    const at = new Date(event.supersededAt)
    if (!Number.isNaN(at.getTime())) return at
    // unreadable: end it now (fail closed)
    log.warn({ deviceId: event.deviceId, event: event.type }, 'control event with unreadable supersededAt')
    return clock.now()
  }

  /**
   * One rule for every event about a device (docs/architecture.md, "The change feed"): the connects of
   * that device still being looked up (tier.updated: of every device) move on, so they read the device
   * again before they register (PendingAuthentication); a closing event refuses them, a superseded
   * certificate brings their end forward. Returns what the event says about the device's live session.
   */
  function touchPending(event: ControlEvent): { serial: string | null; supersededAt: Date | null } | null {
    const deviceId = 'deviceId' in event ? event.deviceId : event.type === 'tier.updated' ? null : undefined
    if (deviceId === undefined) return null
    const serial = 'serial' in event && event.serial !== undefined ? serialOf({ ...event, serial: event.serial }) : null
    const supersededAt = event.type === 'certificate.superseded' ? supersededAtOf(event) : null
    sessions.touch({ deviceId, serial, event: event.type, closes: CLOSING_EVENTS.has(event.type), supersededAt })
    return { serial, supersededAt }
  }

  const unsubscribe = directory.onEvent((event) => {
    if (stopped) return
    if (event.type === 'claim.revoked') {
      claimSessions.revokePending(event.claimId)
      for (const c of claimSessions.all()) if (c.claimId === event.claimId) closeClaimSession(c, event.type)
      return
    }
    if (event.type === 'app.revoked') {
      const serial = event.serial === undefined ? null : serialOf({ ...event, serial: event.serial })
      const app = deps.appSessions?.revoke(event.name, serial)
      if (app) closeAppSession(app, event.type)
      return
    }
    const touched = touchPending(event)
    if (touched === null || !('deviceId' in event)) return
    if (touched.supersededAt !== null) {
      const session = sessions.live(event.deviceId, touched.serial)
      if (!session) return
      Object.assign(session, endAt(session, touched.supersededAt))
      const ended = deviceSessionEnded(session, clock.now())
      if (ended) closeSession(session, ended)
      return
    }
    if (!CLOSING_EVENTS.has(event.type)) return
    const session = sessions.live(event.deviceId, touched.serial)
    if (session) closeSession(session, event.type)
    if (event.type !== 'certificate.revoked') deps.onDeviceEnded?.(event.deviceId)
  })

  function watchClaimSession(session: ClaimSession): void {
    if (stopped || session.client.closed) return
    const handle = timers.setTimeout(() => {
      claimTimers.delete(handle)
      const ended = claimSessionEnded(session, clock.now())
      if (ended && !stopped) closeClaimSession(session, ended)
    }, session.expiresAt.getTime() - clock.now().getTime())
    claimTimers.add(handle)
    session.client.conn.once('close', () => {
      if (claimTimers.delete(handle)) timers.clearTimeout(handle)
    })
  }

  function sweep(): void {
    const now = clock.now()
    for (const s of sessions.all()) {
      const ended = s.client.closed ? null : deviceSessionEnded(s, now)
      if (ended) closeSession(s, ended, { validUntil: s.validUntil.toISOString() })
    }
    for (const c of claimSessions.all()) {
      const ended = c.client.closed ? null : claimSessionEnded(c, now)
      if (ended) closeClaimSession(c, ended)
    }
    for (const a of deps.appSessions?.all() ?? []) {
      if (!a.client.closed && now.getTime() >= a.validUntil.getTime()) closeAppSession(a, 'certificate-expired')
    }
  }

  function schedule(): void {
    timer = timers.setTimeout(() => {
      timer = null
      if (stopped) return
      try {
        sweep()
      } catch (err) {
        log.error({ err }, 'session sweep failed')
      }
      schedule()
    }, deps.limits.sessionSweepMs)
  }
  schedule()

  return {
    closeSession,
    closeClaimSession,
    watchClaimSession,
    sweep,
    stop() {
      if (stopped) return
      stopped = true
      unsubscribe()
      if (timer !== null) timers.clearTimeout(timer)
      timer = null
      for (const handle of claimTimers) timers.clearTimeout(handle)
      claimTimers.clear()
    },
  }
}
