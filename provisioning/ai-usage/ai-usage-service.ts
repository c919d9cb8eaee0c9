import type { Logger } from 'pino'
import { systemTimers, type Clock, type Timers } from '../../certs/index.ts'
import { AiUsageQueryInvalid } from '../errors.ts'
import type { AiUsageSettlement, AiUsageStore, StoredInsight } from '../store/ai-usage-store.ts'
import { createInsightBatch } from './insight-batch.ts'

/**
 * The control plane's side of the AI bridge. Its get/add match the broker's UsageLedger and its
 * append/list the broker's InsightSink, structurally (provisioning never imports broker/), so the
 * composition root passes this service to attachAiBridge as both. usageFor and listInsights serve
 * GET /v1/devices/{id}/usage and /insights.
 */

/** Mirrors broker/ai-bridge's Insight (test/unit/provisioning/ai-usage keeps the two in step). */
export interface AiInsight {
  type: 'insight'
  id: string
  deviceId: string
  provider: string
  model: string
  summary: string
  anomalies: { kind: 'zscore' | 'threshold' | 'trend' | 'model'; metric?: string; value?: number; message: string }[]
  at: string
  usage: { requests: number; promptTokens: number; completionTokens: number; totalTokens: number }
}

export interface AiUsageDay {
  /** UTC date 'YYYY-MM-DD' */
  day: string
  requests: number
  tokens: number
}

export interface AiUsageReport {
  deviceId: string
  /** first and last day of the report (UTC, inclusive); `to` is today by the clock */
  from: string
  to: string
  /** one entry per day, oldest first; days without usage are zeros */
  days: AiUsageDay[]
  total: { requests: number; tokens: number }
}

export interface AiUsageServiceDeps {
  store: AiUsageStore
  clock: Clock
  /** the insights' write-behind timer; default the real timers (unref'd) */
  timers?: Timers
  /** where a failed write-behind of insights is reported */
  log?: Logger
}

export interface AiUsageServiceOptions {
  /** insights kept per device (older ones pruned on append). Default 100 */
  insightsPerDevice?: number
  /** appended insights are written together at most this long after (insight-batch.ts), ms. Default 1000 */
  insightFlushMs?: number
  /** insights held unwritten at most; one more writes them at once. Default 1000 */
  maxPendingInsights?: number
}

export const MAX_USAGE_DAYS = 366
export const MAX_INSIGHTS_LIMIT = 1000
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/
const DAY_MS = 86_400_000
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10)

function assertCount(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new AiUsageQueryInvalid(`${name} must be an integer in [${min}, ${max}], got ${v}`)
}

function assertDay(day: string): void {
  if (!DAY_PATTERN.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)))
    throw new AiUsageQueryInvalid(`day must be a UTC date YYYY-MM-DD, got '${day}'`)
}

export function createAiUsageService(deps: AiUsageServiceDeps, options: AiUsageServiceOptions = {}) {
  const keep = options.insightsPerDevice ?? 100
  assertCount('insightsPerDevice', keep, 1, 100_000)
  const { store, clock } = deps
  const batch = createInsightBatch(
    { store, timers: deps.timers ?? systemTimers, ...(deps.log && { log: deps.log }) },
    { keepPerDevice: keep, flushMs: options.insightFlushMs ?? 1000, maxPending: options.maxPendingInsights ?? 1000 },
  )
  /** newest first: the held insights (newer) over the stored ones, at most `limit` and the `keep` a device has */
  // (a batch may be written while the stored ones are read: it is then in both, counted once)
  const insightsOf = async (deviceId: string, limit: number): Promise<AiInsight[]> => {
    const held = batch.pendingOf(deviceId)
    const ids = new Set(held.map((i) => i.id))
    const stored = (await store.listInsights(deviceId, limit)).filter((i) => !ids.has(i.id))
    return [...held, ...stored].slice(0, Math.min(limit, keep)).map((i: StoredInsight) => i.data as unknown as AiInsight)
  }

  return {
    // --- UsageLedger (broker) ---
    async get(deviceId: string, day: string): Promise<{ requests: number; tokens: number }> {
      assertDay(day)
      const r = await store.getUsage(deviceId, day)
      return { requests: r?.requests ?? 0, tokens: r?.tokens ?? 0 }
    },
    async add(deviceId: string, day: string, requests: number, tokens: number): Promise<void> {
      assertDay(day)
      assertCount('requests', requests, 0, Number.MAX_SAFE_INTEGER)
      assertCount('tokens', tokens, 0, Number.MAX_SAFE_INTEGER)
      if (requests === 0 && tokens === 0) return
      await store.addUsage(deviceId, day, requests, tokens)
    },
    /** Leases up to `requests` of the day's budget `maxRequests`, atomically (the store's leaseRequests). */
    async lease(
      deviceId: string,
      day: string,
      requests: number,
      maxRequests: number,
    ): Promise<{ granted: number; requests: number; tokens: number }> {
      assertDay(day)
      assertCount('requests', requests, 1, Number.MAX_SAFE_INTEGER)
      assertCount('maxRequests', maxRequests, 0, Number.MAX_SAFE_INTEGER)
      return store.leaseRequests(deviceId, day, requests, maxRequests)
    },
    /** Gives back the unspent part of leases and adds the tokens spent: every device's at once, in one transaction. */
    async settle(settlements: readonly AiUsageSettlement[]): Promise<void> {
      for (const s of settlements) {
        assertDay(s.day)
        assertCount('returnedRequests', s.returnedRequests, 0, Number.MAX_SAFE_INTEGER)
        assertCount('tokens', s.tokens, 0, Number.MAX_SAFE_INTEGER)
      }
      const due = settlements.filter((s) => s.returnedRequests > 0 || s.tokens > 0)
      if (due.length > 0) await store.settleUsage(due)
    },

    // --- InsightSink (broker) ---
    async append(insight: AiInsight): Promise<void> {
      if (typeof insight?.id !== 'string' || typeof insight.deviceId !== 'string' || typeof insight.at !== 'string') {
        throw new AiUsageQueryInvalid('an insight needs string id, deviceId and at')
      }
      await batch.add({ id: insight.id, deviceId: insight.deviceId, at: insight.at, data: { ...insight } })
    },
    /** newest first */
    async list(deviceId: string, limit: number): Promise<AiInsight[]> {
      assertCount('limit', limit, 1, MAX_INSIGHTS_LIMIT)
      return insightsOf(deviceId, limit)
    },
    /** Writes the insights held by the write-behind now. */
    flushInsights(): Promise<void> {
      return batch.flush()
    },
    /** The last write of the held insights (the control plane's close): nothing is retried after it. */
    closeInsights(): Promise<void> {
      return batch.close()
    },

    // --- for the HTTP API ---
    /** The last `days` UTC days up to today (by the clock), zero-filled, oldest first, with the total. */
    async usageFor(deviceId: string, days = 30): Promise<AiUsageReport> {
      assertCount('days', days, 1, MAX_USAGE_DAYS)
      const today = Date.parse(`${utcDay(clock.now().getTime())}T00:00:00Z`)
      const from = utcDay(today - (days - 1) * DAY_MS)
      const to = utcDay(today)
      const rows = new Map((await store.listUsage(deviceId, from, to)).map((r) => [r.day, r]))
      const out: AiUsageDay[] = []
      const total = { requests: 0, tokens: 0 }
      for (let i = days - 1; i >= 0; i--) {
        const day = utcDay(today - i * DAY_MS)
        const r = rows.get(day)
        out.push({ day, requests: r?.requests ?? 0, tokens: r?.tokens ?? 0 })
        total.requests += r?.requests ?? 0
        total.tokens += r?.tokens ?? 0
      }
      return { deviceId, from, to, days: out, total }
    },
    /** newest first; at most the insightsPerDevice that are kept */
    async listInsights(deviceId: string, limit = 20): Promise<AiInsight[]> {
      assertCount('limit', limit, 1, MAX_INSIGHTS_LIMIT)
      return insightsOf(deviceId, limit)
    },
    /** Deletes usage older than `keepDays` days (housekeeping; daily budgets only read today). */
    async pruneUsage(keepDays = MAX_USAGE_DAYS): Promise<number> {
      assertCount('keepDays', keepDays, 1, 100_000)
      const today = Date.parse(`${utcDay(clock.now().getTime())}T00:00:00Z`)
      return store.pruneUsage(utcDay(today - (keepDays - 1) * DAY_MS))
    },
  }
}

export type AiUsageService = ReturnType<typeof createAiUsageService>
