import type { Client } from 'aedes'
import type { AppTopicClass } from './device-directory.ts'
import type { TopicGrants } from './topics.ts'

/**
 * App sessions (docs/device-protocol.md "Apps"): a connection made with an app certificate (CN and
 * clientId `app:<name>`). Apps are not devices: they live apart from sessions.ts (no settings, no AI
 * bridge, no presence) and may only subscribe inside their grants; what reaches them is filtered per
 * message by the publishing device's group (hooks/authorize-forward.ts).
 */
export interface AppSession {
  /** unique per connection within one broker (shared with device sessions' ids) */
  id: number
  name: string
  /** `app:<name>` */
  clientId: string
  serial: string
  fingerprint: string
  remoteAddress: string | null
  client: Client
  /** null: every group; else the groups whose devices' messages it gets */
  groups: ReadonlySet<string> | null
  classes: readonly AppTopicClass[]
  /** its subscribe filters (topics.ts appGrants); it publishes nothing */
  grants: TopicGrants
  /** the app certificate's notAfter: the sweep closes the session then */
  validUntil: Date
  /** why the broker closed it (see Session.closedBy); null while the app is the one to end it */
  closedBy: string | null
}

/** A connect between "lookup started" and "session registered"; app.revoked in between invalidates it. */
export interface PendingApp {
  name: string
  serial: string
  revoked: boolean
}

export interface AppSessionRegistry {
  /** Registers a session; returns the live session of the same app it replaces (a takeover), if any. */
  add(session: AppSession): AppSession | undefined
  remove(session: AppSession): void
  all(): IterableIterator<AppSession>
  beginAuthentication(name: string, serial: string): PendingApp
  endAuthentication(pending: PendingApp): void
  /**
   * app.revoked: marks pending connects of the app and returns its live session, if any; given a
   * serial (canonical, normalizeSerial), only those on that certificate.
   */
  revoke(name: string, serial: string | null): AppSession | undefined
}

export function createAppSessionRegistry(): AppSessionRegistry {
  const sessions = new Map<string, AppSession>()
  const pending = new Set<PendingApp>()
  return {
    add(session) {
      const previous = sessions.get(session.name)
      sessions.set(session.name, session)
      return previous && !previous.client.closed ? previous : undefined
    },
    remove(session) {
      if (sessions.get(session.name) === session) sessions.delete(session.name)
    },
    all: () => sessions.values(),
    beginAuthentication(name, serial) {
      const p = { name, serial, revoked: false }
      pending.add(p)
      return p
    },
    endAuthentication: (p) => void pending.delete(p),
    revoke(name, serial) {
      for (const p of pending) if (p.name === name && (serial === null || p.serial === serial)) p.revoked = true
      const session = sessions.get(name)
      return session && (serial === null || session.serial === serial) ? session : undefined
    },
  }
}
