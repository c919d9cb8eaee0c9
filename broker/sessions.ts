import type { Client } from 'aedes'

/**
 * Who is connected, on which certificate: the broker's own view, used for takeover detection and for
 * closing sessions on live revocation. Nothing here is cached from the directory: each connect makes
 * its own lookup, and events only ever close sessions.
 */
export interface Session {
  deviceId: string
  serial: string
  fingerprint: string
  tier: string
  group: string | null
  remoteAddress: string | null
  client: Client
  /**
   * Why the broker closed it, when it did (takeover, revocation, refused publish, limits, shutdown);
   * null while the device is the one to end it. Non-null also means: no will for this session.
   */
  closedBy: string | null
}

/** A connect between "lookup started" and "session registered"; an event in between invalidates it. */
export interface PendingAuthentication {
  deviceId: string
  serial: string
  invalidatedBy: string | null
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
  /**
   * A control event hit `deviceId` (and, for certificate events, only `serial`): marks pending
   * authentications and returns the live session to close, if it matches.
   */
  invalidate(deviceId: string, serial: string | null, reason: string): Session | undefined
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
      const p: PendingAuthentication = { deviceId, serial, invalidatedBy: null }
      let set = pending.get(deviceId)
      if (!set) pending.set(deviceId, (set = new Set()))
      set.add(p)
      return p
    },
    endAuthentication(p) {
      const set = pending.get(p.deviceId)
      if (!set) return
      set.delete(p)
      if (set.size === 0) pending.delete(p.deviceId)
    },
    invalidate(deviceId, serial, reason) {
      for (const p of pending.get(deviceId) ?? []) {
        if (matches(p, serial)) p.invalidatedBy = reason
      }
      const session = sessions.get(deviceId)
      return session && !session.client.closed && matches(session, serial) ? session : undefined
    },
  }
}
