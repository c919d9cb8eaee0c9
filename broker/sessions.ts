import type { Client } from 'aedes'
import type { TopicGrants } from './topics.ts'

/**
 * Who is connected, on which certificate: the broker's own view, used for takeover detection and for
 * closing sessions on live revocation. Nothing here is cached from the directory: each connect makes
 * its own lookup, and events only ever close sessions or bring their end forward.
 * (Claim sessions are not devices: they live apart, in claim-sessions.ts.)
 */
export interface Session {
  /** unique per connection within one broker (enrollment keys its per-session queue by it) */
  id: number
  deviceId: string
  serial: string
  fingerprint: string
  tier: string
  group: string | null
  remoteAddress: string | null
  client: Client
  /** what it may publish and subscribe to (topics.ts deviceGrants) */
  grants: TopicGrants
  /** the validity of the certificate it connected with (renewal-notice.ts tells the device its renewal window) */
  notBefore: Date
  notAfter: Date
  /** when the sweep closes it: the certificate's notAfter, or the end of its renewal overlap */
  validUntil: Date
  /** what validUntil is: the reason the sweep gives when it closes the session */
  endReason: DeviceSessionEnd
  /**
   * Why the broker closed it, when it did (takeover, revocation, refused publish, limits, shutdown);
   * null while the device is the one to end it. Non-null also means: no will for this session.
   */
  closedBy: string | null
}

export type DeviceSessionEnd = 'certificate-expired' | 'superseded'

/**
 * A connect between "lookup started" and "session registered". Every control event about its device
 * (tier.updated: about any device) moves its epoch while the lookup is in flight: the answer may predate
 * the event, so the hook reads the device again before it registers the session (hooks/authenticate.ts).
 * A closing event (revoke, disable) also marks it refused, and a superseded certificate its new end.
 */
export interface PendingAuthentication {
  deviceId: string
  serial: string
  /** how many control events about the device arrived since the lookup began */
  epoch: number
  /** the last of them */
  movedBy: string | null
  invalidatedBy: string | null
  /** the earliest supersededAt announced for this certificate while the lookup was in flight */
  supersededAt: Date | null
}

/** What a control event tells the connects of a device still being looked up (SessionRegistry.touch). */
export interface PendingChange {
  /** null: every device (tier.updated: a pending connect's tier is not known yet) */
  deviceId: string | null
  /** a certificate event: closes or supersedes only connects on this serial (null: every certificate) */
  serial: string | null
  event: string
  closes: boolean
  supersededAt: Date | null
}

export interface SessionRegistry {
  /** Registers a session; returns the live session it replaces (a takeover), if any. */
  add(session: Session): Session | undefined
  /** Forgets a session if it is still the current one for its device. */
  remove(session: Session): void
  get(deviceId: string): Session | undefined
  all(): IterableIterator<Session>
  beginAuthentication(deviceId: string, serial: string): PendingAuthentication
  endAuthentication(pending: PendingAuthentication): void
  /** A control event about a device (or every device): moves the epoch of its pending authentications. */
  touch(change: PendingChange): void
  /** The live session of `deviceId` (for certificate events, only one on `serial`), if any. */
  live(deviceId: string, serial: string | null): Session | undefined
}

/**
 * Brings a session's end forward to `at` when that is earlier (a renewal's overlap ends before the
 * old certificate expires). Pure; never pushes an end back.
 */
export function endAt(
  current: { validUntil: Date; endReason: DeviceSessionEnd },
  at: Date,
): { validUntil: Date; endReason: DeviceSessionEnd } {
  return at.getTime() < current.validUntil.getTime() ? { validUntil: at, endReason: 'superseded' } : current
}

/**
 * A new session's end: the certificate's notAfter, brought forward to the directory's validUntil and
 * to a supersededAt announced while the lookup was in flight. A validUntil that is not a date (a
 * directory that does not send one) leaves notAfter. Pure.
 */
export function sessionEnd(
  notAfter: Date,
  validUntil: Date | undefined,
  supersededAt: Date | null,
): { validUntil: Date; endReason: DeviceSessionEnd } {
  let end: { validUntil: Date; endReason: DeviceSessionEnd } = { validUntil: notAfter, endReason: 'certificate-expired' }
  if (validUntil instanceof Date && !Number.isNaN(validUntil.getTime())) end = endAt(end, validUntil)
  if (supersededAt !== null) end = endAt(end, supersededAt)
  return end
}

/** Why the sweep closes this device session now, or null while it is still valid. Pure. */
export function deviceSessionEnded(s: { validUntil: Date; endReason: DeviceSessionEnd }, now: Date): DeviceSessionEnd | null {
  return now.getTime() >= s.validUntil.getTime() ? s.endReason : null
}

export function createSessionRegistry(): SessionRegistry {
  const sessions = new Map<string, Session>()
  const pending = new Map<string, Set<PendingAuthentication>>()
  const matches = (s: { serial: string }, serial: string | null) => serial === null || s.serial === serial

  return {
    add(session) {
      const previous = sessions.get(session.deviceId)
      sessions.set(session.deviceId, session)
      return previous && !previous.client.closed ? previous : undefined
    },
    remove(session) {
      if (sessions.get(session.deviceId) === session) sessions.delete(session.deviceId)
    },
    get: (deviceId) => sessions.get(deviceId),
    all: () => sessions.values(),
    beginAuthentication(deviceId, serial) {
      const p: PendingAuthentication = { deviceId, serial, epoch: 0, movedBy: null, invalidatedBy: null, supersededAt: null }
      let set = pending.get(deviceId)
      if (!set) {
        set = new Set()
        pending.set(deviceId, set)
      }
      set.add(p)
      return p
    },
    endAuthentication(p) {
      const set = pending.get(p.deviceId)
      if (!set) return
      set.delete(p)
      if (set.size === 0) pending.delete(p.deviceId)
    },
    touch(change) {
      const sets = change.deviceId === null ? pending.values() : [pending.get(change.deviceId) ?? new Set<PendingAuthentication>()]
      for (const set of sets) {
        for (const p of set) {
          p.epoch++
          p.movedBy = change.event
          if (!matches(p, change.serial)) continue
          if (change.closes) p.invalidatedBy = change.event
          const at = change.supersededAt
          if (at !== null && (p.supersededAt === null || at < p.supersededAt)) p.supersededAt = at
        }
      }
    },
    live(deviceId, serial) {
      const session = sessions.get(deviceId)
      return session && !session.client.closed && matches(session, serial) ? session : undefined
    },
  }
}
