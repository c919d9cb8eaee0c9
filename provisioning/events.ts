import type { Clock } from '../certs/index.ts'
import type { Logger } from 'pino'
import type { RegistryStore, StoredEvent } from './store/registry-store.ts'

/**
 * Control-plane events, `noun.pastVerb` (docs/conventions.md §19). They are written to the registry's
 * `events` table in the same transaction as the change they describe, so they are never lost and never
 * announce a change that did not commit.
 *
 * The change feed polls that table. One mechanism serves both a change made in this process (the HTTP
 * API) and one made by another process on the same data directory (the operator CLI): each reaches the
 * running broker within one poll interval (default 200 ms), so a revoked device is cut off well within
 * a second. On PostgreSQL (cluster mode) the same feed is woken by the store's onRemoteEvents (LISTEN):
 * another node's commit is read as soon as its notification arrives, and everything since the last read
 * after every (re)connect of LISTEN; the poll stays as the safety net.
 *
 * A poll interval is too late for a CONNECT, though: a device revoked by the CLI a moment ago must not
 * get in on a cached answer, nor a device just enabled be refused. catchUp() delivers, before the
 * broker judges a connect, every event committed before it: it compares the store's data version
 * (PRAGMA data_version, which moves when another process commits; about a microsecond; on PostgreSQL the
 * last event id, one index read, so no notification is waited for) and polls only when it moved or this process committed
 * events the feed has not delivered yet.
 */
export type ControlEvent =
  | { type: 'device.created'; deviceId: string }
  | { type: 'device.revoked'; deviceId: string }
  | { type: 'device.disabled'; deviceId: string }
  | { type: 'device.enabled'; deviceId: string }
  /** the device's group, tier, labels or its own limits changed */
  | { type: 'device.updated'; deviceId: string }
  | { type: 'certificate.issued'; deviceId: string; serial: string }
  | { type: 'certificate.revoked'; deviceId: string; serial: string }
  /** supersededAt (ISO): the end of the renewal overlap, from when the certificate is refused; sessions on it are closed then, not before */
  | { type: 'certificate.superseded'; deviceId: string; serial: string; supersededAt: string }
  | { type: 'settings.changed'; deviceId: string; version: number }
  | { type: 'claim.revoked'; claimId: string }
  /** an app was revoked (its sessions close at once), or with `serial` one of its certificates (only a session on it closes) */
  | { type: 'app.revoked'; name: string; serial?: string }
  | { type: 'ca.rotated'; serial: string }
  /** a tier's limits changed */
  | { type: 'tier.updated'; tier: string }
  /** a telemetry route was created or deleted (broker/telemetry-routes/) */
  | { type: 'route.changed'; routeId: string }

/** Events about one device (every other kind concerns the fleet, a claim or the CA). */
export type DeviceEvent = Extract<ControlEvent, { deviceId: string }>

export function isDeviceEvent(event: ControlEvent): event is DeviceEvent {
  return 'deviceId' in event
}

export type ControlEventListener = (event: ControlEvent) => void

export interface Scheduler {
  every(ms: number, fn: () => void): () => void
}

export const realScheduler: Scheduler = {
  every(ms, fn) {
    const timer = setInterval(fn, ms)
    timer.unref()
    return () => clearInterval(timer)
  },
}

export interface ChangeFeed {
  onEvent(listener: ControlEventListener): () => void
  /**
   * Reads and delivers every event committed before the call; resolves to how many it delivered. One read
   * runs at a time: a call made while one runs waits for the next, which every such call shares.
   */
  poll(): Promise<number>
  /** poll(), but only if anything was committed since the last one (by any process); resolves to how many were delivered. */
  catchUp(): Promise<number>
  start(): void
  stop(): void
  /** For readiness (GET /readyz): whether it runs, its interval, and the later of its last successful poll and its start (null: neither). */
  status(): { running: boolean; intervalMs: number; lastProgressAt: Date | null }
  /** The last event delivered and when the last poll finished (null before the first): what its lag is measured from. */
  position(): { seq: number; polledAt: Date | null }
}

export interface ChangeFeedOptions {
  intervalMs?: number
  /** events older than this are pruned from the table (they have been delivered long since) */
  retainMs?: number
}

/** A feed that delivers every event committed after it was made (its cursor is the last event id then). */
export async function createChangeFeed(
  deps: {
    /** the registry's change-feed part: all the feed reads and watches */
    store: Pick<RegistryStore, 'onEventsCommitted' | 'onRemoteEvents' | 'eventsAfter' | 'lastEventSeq' | 'dataVersion' | 'pruneEvents'>
    clock: Clock
    log: Logger
    scheduler?: Scheduler
  },
  options: ChangeFeedOptions = {},
): Promise<ChangeFeed> {
  const { store, clock, log } = deps
  const scheduler = deps.scheduler ?? realScheduler
  const intervalMs = options.intervalMs ?? 200
  const retainMs = options.retainMs ?? 24 * 3600_000
  const listeners = new Set<ControlEventListener>()
  let stopTimer: (() => void) | undefined
  let stopRemote: (() => void) | undefined
  let polls = 0
  let nudged = false
  let localCommits = false
  /** when the last poll finished (null before the first): the lag of metrics and the staleness of /readyz */
  let polledAt: Date | null = null
  let startedAt: Date | null = null
  // A commit in this process, or one another node announced (onRemoteEvents: PostgreSQL's LISTEN), is
  // delivered on the next turn of the event loop, not a poll interval later.
  function nudge(): void {
    if (nudged || !stopTimer) return
    nudged = true
    setImmediate(() => {
      nudged = false
      if (stopTimer) void safePoll()
    })
  }
  store.onEventsCommitted(() => {
    localCommits = true
    nudge()
  })
  // the version first: a commit after it moves the version again, so catchUp() reads again
  let seenVersion = await store.dataVersion()
  let cursor = await store.lastEventSeq()

  /** a poll whose failure is logged (the next one retries); resolves when it has ended */
  function safePoll(): Promise<void> {
    return poll().then(
      () => {},
      (err: unknown) => log.warn({ err }, 'change feed poll failed; retrying'),
    )
  }

  /**
   * The interval's poll: the events are read only when something may have committed (the version moved, or a
   * commit of this process), as catchUp() decides; an idle registry costs one cheap read per interval instead
   * of two (issue 14: idle CPU). polledAt moves either way: nothing was left unread at that version.
   */
  function tick(): Promise<void> {
    if (localCommits || running !== undefined) return safePoll()
    return store.dataVersion().then(
      (version) => {
        if (localCommits || version !== seenVersion) return safePoll()
        polledAt = clock.now()
        if (++polls % 3000 === 0) prune()
      },
      (err: unknown) => log.warn({ err }, 'change feed poll failed; retrying'),
    )
  }

  function prune(): void {
    store
      .pruneEvents(new Date(clock.now().getTime() - retainMs))
      .catch((err: unknown) => log.warn({ err }, 'pruning delivered events failed'))
  }

  function deliver(stored: StoredEvent): void {
    const event = { type: stored.type, ...stored.data } as ControlEvent
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (err) {
        log.error({ err, type: stored.type }, 'event listener failed')
      }
    }
  }

  async function readAll(): Promise<number> {
    // read before the events: a commit after this line moves the version again, so catchUp() polls again
    localCommits = false
    let delivered = 0
    try {
      seenVersion = await store.dataVersion()
      for (;;) {
        const batch = await store.eventsAfter(cursor, 500)
        for (const e of batch) {
          cursor = e.seq
          deliver(e)
        }
        delivered += batch.length
        if (batch.length < 500) break
      }
    } catch (err) {
      localCommits = true // a read that failed (the database unreachable) vouches for nothing: the next catchUp() reads
      throw err
    }
    polledAt = clock.now()
    if (++polls % 3000 === 0) prune()
    return delivered
  }

  // One read at a time (two would share the cursor and deliver an event twice). A poll asked for while one
  // runs may concern a commit that one has read past, so it is queued, and every caller meanwhile shares it.
  let running: Promise<number> | undefined
  let queued: Promise<number> | undefined
  function poll(): Promise<number> {
    if (running === undefined) {
      running = readAll().finally(() => {
        running = undefined
      })
      return running
    }
    queued ??= running.then(
      () => next(),
      () => next(),
    )
    return queued
  }
  function next(): Promise<number> {
    queued = undefined
    return poll()
  }

  return {
    onEvent(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    poll,
    position: () => ({ seq: cursor, polledAt }),
    async catchUp() {
      const version = await store.dataVersion()
      if (localCommits || version !== seenVersion) return poll()
      // nothing committed since the running read took its version: that read delivers everything before this call
      return running ?? 0
    },
    start() {
      if (stopTimer) return
      stopTimer = scheduler.every(intervalMs, tick)
      stopRemote = store.onRemoteEvents(nudge)
      startedAt = clock.now()
    },
    stop() {
      stopTimer?.()
      stopTimer = undefined
      stopRemote?.()
      stopRemote = undefined
    },
    status: () => ({ running: stopTimer !== undefined, intervalMs, lastProgressAt: latest(polledAt, startedAt) }),
  }
}

function latest(a: Date | null, b: Date | null): Date | null {
  return a === null || (b !== null && b > a) ? b : a
}
