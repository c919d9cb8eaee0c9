/**
 * The dashboard's signed-in sessions, in the registry's database (migration 14), so every worker and node
 * of a cluster sees the same sessions and a restart keeps them (docs/architecture.md, "The dashboard's
 * sessions"). Only a hash of the cookie's session id is stored; the CSRF token is derived from the id
 * (provisioning/dashboard/sessions.ts) and not stored at all. Every engine keeps the bounds at sign-in (create); a lookup
 * only reads, and provisioning/dashboard/sessions.ts refuses and removes an expired session.
 */
export interface DashboardSessionRecord {
  /** SHA-256 of the cookie's session id (base64url); the id itself is never stored */
  idHash: string
  /** the API key that signed in (its id and name: the audit actor is apikey:<name>) */
  keyId: string
  keyName: string
  createdAt: Date
  /** the last use written (writes are throttled: it may lag the last request by a little) */
  lastSeenAt: Date
}

export interface SessionBounds {
  /** sessions kept at once; a new one ends the oldest beyond it */
  maxSessions: number
  /** a session unused this long has ended */
  idleMs: number
  /** a session this long after its sign-in has ended, used or not */
  maxAgeMs: number
}

export interface DashboardSessionStore {
  /** Stores a new session (at record.createdAt): ends the expired ones, then the oldest beyond bounds.maxSessions. */
  create(record: DashboardSessionRecord, bounds: SessionBounds): Promise<void>
  /**
   * The stored session, expired or not: a lookup only reads. Whether it has expired is the caller's
   * (`sessionExpired`): provisioning/dashboard/sessions.ts removes an expired one, and treats a failure of that
   * write, on any engine, as bookkeeping.
   */
  get(idHash: string): Promise<DashboardSessionRecord | undefined>
  /** Counts as used at `at`. */
  touch(idHash: string, at: Date): Promise<void>
  remove(idHash: string): Promise<void>
  /** Ends every session of an API key (when it is revoked); how many ended. */
  removeForKey(keyId: string): Promise<number>
  /** sessions stored, expired ones not yet swept included */
  count(): Promise<number>
}

/** Whether a session has ended by time at `now`: idle too long, or too old. */
export function sessionExpired(s: Pick<DashboardSessionRecord, 'createdAt' | 'lastSeenAt'>, bounds: SessionBounds, now: Date): boolean {
  const t = now.getTime()
  return t - s.lastSeenAt.getTime() >= bounds.idleMs || t - s.createdAt.getTime() >= bounds.maxAgeMs
}

/** The times before which a session has expired at `now` (its last use, its sign-in): the engines' sweep. */
export function expiryCutoffs(bounds: SessionBounds, now: Date): { idleBefore: Date; createdBefore: Date } {
  return { idleBefore: new Date(now.getTime() - bounds.idleMs), createdBefore: new Date(now.getTime() - bounds.maxAgeMs) }
}
