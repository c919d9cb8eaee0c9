import { type DashboardSessionRecord, type DashboardSessionStore, type SessionBounds, sessionExpired } from './dashboard-session-store.ts'

/**
 * DashboardSessionStore in memory: the API's default when no registry gives one (tests of buildApi), and the
 * twin the contract suite holds the engines to. Insertion order is sign-in order.
 */
export class InMemoryDashboardSessionStore implements DashboardSessionStore {
  readonly #sessions = new Map<string, DashboardSessionRecord>()

  async create(record: DashboardSessionRecord, bounds: SessionBounds): Promise<void> {
    for (const [hash, s] of this.#sessions) if (sessionExpired(s, bounds, record.createdAt)) this.#sessions.delete(hash)
    this.#sessions.delete(record.idHash)
    while (this.#sessions.size >= bounds.maxSessions) this.#sessions.delete(this.#sessions.keys().next().value as string)
    this.#sessions.set(record.idHash, { ...record })
  }

  async get(idHash: string): Promise<DashboardSessionRecord | undefined> {
    const s = this.#sessions.get(idHash)
    return s && { ...s }
  }

  async touch(idHash: string, at: Date): Promise<void> {
    const s = this.#sessions.get(idHash)
    if (s) s.lastSeenAt = at
  }

  async remove(idHash: string): Promise<void> {
    this.#sessions.delete(idHash)
  }

  async removeForKey(keyId: string): Promise<number> {
    let n = 0
    for (const [hash, s] of this.#sessions) if (s.keyId === keyId && this.#sessions.delete(hash)) n++
    return n
  }

  async count(): Promise<number> {
    return this.#sessions.size
  }
}
