import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { Timers } from '../../certs/index.ts'
import { DashboardStreamsFull } from '../errors.ts'
import type { FleetSignals } from './fleet-view.ts'

export interface LiveStreamDeps {
  signals: Pick<FleetSignals, 'onChange'>
  /** the overview, computed once per flush for every client */
  snapshot: () => Promise<unknown>
  timers: Timers
  log: Logger
}

export interface LiveStreamOptions {
  /** streams open at once; default 16 */
  maxClients?: number
  /** changes closer together than this are sent as one snapshot; default 250 ms */
  coalesceMs?: number
  /** a fresh snapshot at least this often (for what changes without a signal: AI usage, expiries); default 15 s */
  refreshMs?: number
}

interface Client {
  res: ServerResponse
  /** false once the session behind the stream has ended: the stream is closed */
  alive: () => boolean | Promise<boolean>
}

/**
 * Server-sent events for the dashboard: on a change (a control event, a connect, disconnect or refusal) every open
 * stream gets a fresh overview, coalesced; and one every refreshMs regardless. Subscribed to the signals
 * only while a stream is open.
 */
export function createLiveStream(deps: LiveStreamDeps, options: LiveStreamOptions = {}) {
  const maxClients = options.maxClients ?? 16
  const coalesceMs = options.coalesceMs ?? 250
  const refreshMs = options.refreshMs ?? 15_000
  const clients = new Set<Client>()
  let unsubscribe: (() => void) | undefined
  let pending: unknown
  let refresh: unknown

  async function frame(): Promise<string | undefined> {
    try {
      return `event: overview\ndata: ${JSON.stringify(await deps.snapshot())}\n\n`
    } catch (err) {
      deps.log.warn({ err }, 'dashboard snapshot failed')
      return undefined
    }
  }

  async function send(client: Client, text: string | undefined): Promise<void> {
    if (!(await client.alive())) return void client.res.end()
    if (text) client.res.write(text)
  }

  async function flush(): Promise<void> {
    pending = undefined
    const text = clients.size > 0 ? await frame() : undefined
    await Promise.all([...clients].map((c) => send(c, text)))
  }

  function scheduleRefresh(): void {
    refresh = deps.timers.setTimeout(() => {
      void flush()
      scheduleRefresh()
    }, refreshMs)
  }

  function onChange(): void {
    pending ??= deps.timers.setTimeout(() => void flush(), coalesceMs)
  }

  function stopWhenIdle(): void {
    if (clients.size > 0) return
    unsubscribe?.()
    unsubscribe = undefined
    if (pending !== undefined) deps.timers.clearTimeout(pending)
    if (refresh !== undefined) deps.timers.clearTimeout(refresh)
    pending = refresh = undefined
  }

  return {
    /** GH_DASHBOARD_STREAMS_FULL when maxClients streams are open: call before taking the response over. */
    checkRoom(): void {
      if (clients.size >= maxClients) throw new DashboardStreamsFull(maxClients)
    },

    /** Takes over a response (hijacked from fastify after checkRoom()) as an event stream. */
    open(res: ServerResponse, alive: () => boolean | Promise<boolean>): Promise<void> {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      })
      const client = { res, alive }
      clients.add(client)
      res.on('close', () => {
        clients.delete(client)
        stopWhenIdle()
      })
      if (!unsubscribe) {
        unsubscribe = deps.signals.onChange(onChange)
        scheduleRefresh()
      }
      return frame().then((text) => send(client, text))
    },

    size: (): number => clients.size,

    /** Ends every stream (before the HTTP server closes: an open stream would hold it). */
    close(): void {
      for (const c of clients) c.res.end()
      clients.clear()
      stopWhenIdle()
    },
  }
}

export type LiveStream = ReturnType<typeof createLiveStream>
