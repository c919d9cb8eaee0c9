import type { Client } from 'aedes'
import type { TopicGrants } from './topics.ts'

/**
 * Claim sessions (docs/device-lifecycle.md "Zero-touch provisioning"): a connection made with a claim
 * certificate (CN `claim:<claimId>`) and clientId `claim:<nonce>`. They are not devices, so they live
 * apart from sessions.ts: no device connect/disconnect listeners, no settings, no AI bridge, and no
 * takeover. A claim is shared by a whole batch, so a second connection with the clientId of a live
 * claim session is refused instead of taking it over: no holder of the claim can step into another's
 * session and read its reply.
 */
export interface ClaimSession {
  /** unique per connection within one broker (shared with device sessions' ids) */
  id: number
  claimId: string
  /** the claim certificate's serial (normalized) */
  serial: string
  fingerprint: string
  nonce: string
  /** `claim:<nonce>` */
  clientId: string
  remoteAddress: string | null
  client: Client
  /** its request topic to write and its response topic to read (topics.ts claimGrants) */
  grants: TopicGrants
  /** connect time + limits.claimSessionSeconds */
  expiresAt: Date
  /** the claim certificate's notAfter */
  validUntil: Date
  /** why the broker closed it (see Session.closedBy); null while the client is the one to end it */
  closedBy: string | null
}

export type ClaimSessionEnd = 'claim-session-timeout' | 'certificate-expired'

/** A claim connect between "lookup started" and "session registered"; claim.revoked in between refuses it. */
export interface PendingClaim {
  claimId: string
  revoked: boolean
}

export interface ClaimSessionRegistry {
  /** Holds `clientId` for a connect of `claimId` in progress; null when a live session or another connect holds it. */
  reserve(clientId: string, claimId: string): PendingClaim | null
  /** Gives up a reservation (the connect was refused or failed). */
  release(clientId: string): void
  /** Registers the session of a reserved clientId (and ends the reservation). */
  add(session: ClaimSession): void
  /** Forgets a session if it is still the current one for its clientId. */
  remove(session: ClaimSession): void
  get(clientId: string): ClaimSession | undefined
  all(): IterableIterator<ClaimSession>
  /** claim.revoked: marks the connects of the claim still being looked up (their answer may predate it) */
  revokePending(claimId: string): void
}

export function createClaimSessionRegistry(): ClaimSessionRegistry {
  const sessions = new Map<string, ClaimSession>()
  const reserved = new Map<string, PendingClaim>()
  return {
    reserve(clientId, claimId) {
      const live = sessions.get(clientId)
      if (reserved.has(clientId) || (live !== undefined && !live.client.closed)) return null
      const pending = { claimId, revoked: false }
      reserved.set(clientId, pending)
      return pending
    },
    release: (clientId) => void reserved.delete(clientId),
    add(session) {
      reserved.delete(session.clientId)
      sessions.set(session.clientId, session)
    },
    remove(session) {
      if (sessions.get(session.clientId) === session) sessions.delete(session.clientId)
    },
    get: (clientId) => sessions.get(clientId),
    all: () => sessions.values(),
    revokePending(claimId) {
      for (const p of reserved.values()) if (p.claimId === claimId) p.revoked = true
    },
  }
}

/** Why the sweep closes this claim session now (whichever end comes first), or null while it may go on. Pure. */
export function claimSessionEnded(s: Pick<ClaimSession, 'expiresAt' | 'validUntil'>, now: Date): ClaimSessionEnd | null {
  const certificateFirst = s.validUntil.getTime() < s.expiresAt.getTime()
  const end = certificateFirst ? s.validUntil : s.expiresAt
  if (now.getTime() < end.getTime()) return null
  return certificateFirst ? 'certificate-expired' : 'claim-session-timeout'
}
