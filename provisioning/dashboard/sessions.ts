import { createHash, timingSafeEqual } from 'node:crypto'
import type { Clock, Random } from '../../certs/index.ts'

/** A signed-in operator: which API key signed in, and the token every POST of the session must carry. */
export interface DashboardSession {
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

const token = (random: Random): string => Buffer.from(random.bytes(32)).toString('base64url')
// the map is keyed by a hash of the cookie value: a heap dump or a log of the keys shows no usable id
const hashOf = (id: string): string => createHash('sha256').update(id).digest('base64url')

/** The same length and bytes, compared in constant time. */
export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * The dashboard's sessions: in memory (a restart signs everyone out), bounded in number and in time.
 * The cookie holds a random id (256 bits); the server keeps only its hash.
 */
export function createSessionStore(deps: { clock: Clock; random: Random }, options: SessionOptions = {}) {
  const maxSessions = options.maxSessions ?? 64
  const idleMs = options.idleMs ?? 30 * 60_000
  const maxAgeMs = options.maxAgeMs ?? 12 * 3600_000
  const sessions = new Map<string, DashboardSession>()
  const expired = (s: DashboardSession, now: number) => now - s.lastSeenAt >= idleMs || now - s.createdAt >= maxAgeMs

  function sweep(now: number): void {
    for (const [hash, s] of sessions) if (expired(s, now)) sessions.delete(hash)
  }

  return {
    /** A new session for this key; returns the id to put in the cookie. */
    create(key: { id: string; name: string }): { id: string; session: DashboardSession } {
      const now = deps.clock.now().getTime()
      sweep(now)
      // insertion order is sign-in order: the first entry is the oldest session
      while (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value as string)
      const id = token(deps.random)
      const session = { keyId: key.id, keyName: key.name, csrfToken: token(deps.random), createdAt: now, lastSeenAt: now }
      sessions.set(hashOf(id), session)
      return { id, session }
    },

    /** The live session of a cookie value (and it counts as used now), or undefined. */
    get(id: string | undefined): DashboardSession | undefined {
      if (!id) return undefined
      const hash = hashOf(id)
      const session = sessions.get(hash)
      if (!session) return undefined
      const now = deps.clock.now().getTime()
      if (expired(session, now)) {
        sessions.delete(hash)
        return undefined
      }
      session.lastSeenAt = now
      return session
    },

    /** Whether the session is still there and unexpired, without counting as use (for open streams). */
    isLive(session: DashboardSession): boolean {
      return [...sessions.values()].includes(session) && !expired(session, deps.clock.now().getTime())
    },

    remove(id: string | undefined): void {
      if (id) sessions.delete(hashOf(id))
    },

    size: (): number => sessions.size,
  }
}

export type SessionStore = ReturnType<typeof createSessionStore>
