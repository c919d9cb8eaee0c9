import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'
import type { Clock, Random } from '../../certs/index.ts'
import {
  type DashboardSessionRecord,
  type DashboardSessionStore,
  type SessionBounds,
  sessionExpired,
} from '../store/dashboard-session-store.ts'
import { InMemoryDashboardSessionStore } from '../store/in-memory-dashboard-session-store.ts'

/** A signed-in operator: which API key signed in, and the token every POST of the session must carry. */
export interface DashboardSession {
  /** the stored hash of the cookie's id */
  idHash: string
  keyId: string
  keyName: string
  csrfToken: string
  createdAt: number
  lastSeenAt: number
}

export interface SessionOptions {
  /** sessions kept at once; signing in beyond it ends the oldest; default 64 */
  maxSessions?: number
  /** a session unused this long ends; default 30 minutes */
  idleMs?: number
  /** a session ends this long after sign-in, used or not; default 12 hours */
  maxAgeMs?: number
}

/** A session's use is written at most this often (default 60 s, at most a tenth of idleMs): not a write per request. */
const touchEveryMs = (idleMs: number): number => Math.min(60_000, Math.floor(idleMs / 10))

const token = (random: Random): string => Buffer.from(random.bytes(32)).toString('base64url')
// stored by a hash of the cookie value: the database, a backup or a heap dump shows no usable id
const hashOf = (id: string): string => createHash('sha256').update(id).digest('base64url')
/**
 * The CSRF token, derived from the session id rather than stored: every worker computes the same one from
 * the cookie, the database holds nothing a page could be forged with, and it reveals nothing of the id.
 */
const csrfOf = (id: string): string => createHmac('sha256', id).update('gatehouse dashboard csrf').digest('base64url')

/** The same length and bytes, compared in constant time. */
export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * The dashboard's sessions, bounded in number and in time, in a DashboardSessionStore: the registry's
 * database in `gatehouse start` (every worker and node sees them, a restart keeps them), in memory by
 * default. The cookie holds a random id (256 bits); the store keeps only its hash.
 */
export function createSessionStore(
  deps: { clock: Clock; random: Random; store?: DashboardSessionStore; log?: Pick<Logger, 'warn'> },
  options: SessionOptions = {},
) {
  const bounds: SessionBounds = {
    maxSessions: options.maxSessions ?? 64,
    idleMs: options.idleMs ?? 30 * 60_000,
    maxAgeMs: options.maxAgeMs ?? 12 * 3600_000,
  }
  const touchMs = touchEveryMs(bounds.idleMs)
  const store = deps.store ?? new InMemoryDashboardSessionStore()

  /**
   * A write a lookup makes on its way (a use recorded, an expired session removed) is bookkeeping, as an API key's
   * last use: a full or locked disk, a refused or lost write on any engine, must not fail a read. It is logged at warn
   * with its code and the lookup answers as if it had been written; the one place for both engines (issue 17).
   */
  async function bookkeeping(write: () => Promise<unknown>, msg: string): Promise<void> {
    try {
      await write()
    } catch (err) {
      deps.log?.warn({ err, code: (err as { code?: string }).code }, msg)
    }
  }

  /** The stored session unless it has ended by time at `now`; an expired one is removed (or a later lookup does). */
  async function unexpired(idHash: string, now: Date): Promise<DashboardSessionRecord | undefined> {
    const stored = await store.get(idHash)
    if (!stored || !sessionExpired(stored, bounds, now)) return stored
    await bookkeeping(() => store.remove(idHash), 'expired dashboard session not removed')
    return undefined
  }

  return {
    /** A new session for this key; returns the id to put in the cookie. */
    async create(key: { id: string; name: string }): Promise<{ id: string; session: DashboardSession }> {
      const now = deps.clock.now()
      const id = token(deps.random)
      const idHash = hashOf(id)
      await store.create({ idHash, keyId: key.id, keyName: key.name, createdAt: now, lastSeenAt: now }, bounds)
      const at = now.getTime()
      return { id, session: { idHash, keyId: key.id, keyName: key.name, csrfToken: csrfOf(id), createdAt: at, lastSeenAt: at } }
    },

    /** The live session of a cookie value (and it counts as used now), or undefined. */
    async get(id: string | undefined): Promise<DashboardSession | undefined> {
      if (!id) return undefined
      const now = deps.clock.now()
      const stored = await unexpired(hashOf(id), now)
      if (!stored) return undefined
      // not recorded, the idle time runs from the last use that was: shorter, never longer
      if (now.getTime() - stored.lastSeenAt.getTime() >= touchMs)
        await bookkeeping(() => store.touch(stored.idHash, now), 'dashboard session use not recorded')
      return {
        idHash: stored.idHash,
        keyId: stored.keyId,
        keyName: stored.keyName,
        csrfToken: csrfOf(id),
        createdAt: stored.createdAt.getTime(),
        lastSeenAt: now.getTime(),
      }
    },

    /** Whether the session is still there and unexpired, without counting as use (for open streams). */
    async isLive(session: DashboardSession): Promise<boolean> {
      return (await unexpired(session.idHash, deps.clock.now())) !== undefined
    },

    /**
     * Removes a session a request refuses all the same (its key revoked or expired since): bookkeeping, as an expired
     * one's removal, so a full disk answers 'signed out' rather than a storage error.
     */
    async discard(session: DashboardSession): Promise<void> {
      await bookkeeping(() => store.remove(session.idHash), 'refused dashboard session not removed')
    },

    /** Signs out: the session is gone when this resolves (a failure to remove it is the caller's error). */
    async remove(id: string | undefined): Promise<void> {
      if (id) await store.remove(hashOf(id))
    },

    size: (): Promise<number> => store.count(),
  }
}

export type SessionStore = ReturnType<typeof createSessionStore>
