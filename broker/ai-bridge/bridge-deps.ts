import type { Logger } from 'pino'
import type { Clock, Random, Timers } from '../../certs/index.ts'
import type { AiLimitValues } from './options.ts'

/**
 * What the AI bridge asks of the rest of Gatehouse. The broker owns these interfaces (docs/conventions.md §3):
 * provisioning's createAiUsageService matches UsageLedger and InsightSink structurally, and the
 * composition root backs `deviceContext` with the settings service. Every method may answer
 * synchronously (SQLite) or with a promise (a shared store in cluster mode later).
 */

/** A device's AI usage on one UTC day. */
export interface UsageCounters {
  requests: number
  /** AI tokens (prompt + completion) as the providers reported them */
  tokens: number
}

/** What a lease granted, and the day's counters (all nodes' leases included) after it. */
/** One device's day settled: unspent leased requests given back, AI tokens spent added. */
export interface UsageSettlement {
  deviceId: string
  day: string
  returnedRequests: number
  tokens: number
}

export interface UsageLease extends UsageCounters {
  granted: number
}

/**
 * Daily counters per device that survive restarts and are shared by every node on one registry: the
 * daily budgets are leased from them in slices (broker/ai-bridge/budgets.ts). `day` is the UTC date,
 * 'YYYY-MM-DD'.
 */
export interface UsageLedger {
  /** Atomically adds up to `requests` to the day's requests, never past `maxRequests`; answers the grant. */
  lease(deviceId: string, day: string, requests: number, maxRequests: number): UsageLease | Promise<UsageLease>
  /** Gives back unspent leased requests and adds the AI tokens spent, for many devices at once (one transaction). */
  settle(settlements: readonly UsageSettlement[]): void | Promise<void>
}

export type AnomalyKind = 'zscore' | 'threshold' | 'trend' | 'model'

export interface InsightAnomaly {
  kind: AnomalyKind
  /** the dotted path of a numeric field ('engine.temp'), when the anomaly is about one */
  metric?: string
  value?: number
  message: string
}

export interface InsightUsage {
  requests: number
  promptTokens: number
  completionTokens: number
  totalTokens: number
}

/** What a device receives on devices/{id}/insights (QoS 1) and what the InsightSink keeps. */
export interface Insight {
  type: 'insight'
  id: string
  deviceId: string
  provider: string
  model: string
  summary: string
  anomalies: InsightAnomaly[]
  /** ISO 8601, from the clock */
  at: string
  usage: InsightUsage
}

/** The one notice a throttled device gets per throttled episode, on devices/{id}/insights. */
export interface ThrottleNotice {
  type: 'throttled'
  deviceId: string
  /** 'rate' (requests per minute), 'daily-requests' or 'daily-tokens' */
  reason: ThrottleReason
  /** ISO 8601: when telemetry will be forwarded again */
  retryAt: string
}

export type ThrottleReason = 'rate' | 'daily-requests' | 'daily-tokens'

/** Keeps the last N insights per device (N is the sink's own option). */
export interface InsightSink {
  append(insight: Insight): void | Promise<void>
  /** newest first */
  list(deviceId: string, limit: number): Insight[] | Promise<Insight[]>
}

/**
 * A device's effective settings and routing facts, from the control plane. `settings` must not carry
 * secrets in clear (the composition root masks them): template variables may read any path of it.
 *   settings.ai.consent === false   stops all forwarding for the device
 *   settings.thresholds             the local provider's limits, see docs/ai-bridge.md
 */
export interface DeviceAiContext {
  tier: string
  group: string | null
  settings: Record<string, unknown>
}

export interface AiBridgeDeps {
  clock: Clock
  log: Logger
  usage: UsageLedger
  insights: InsightSink
  /** undefined for a device the control plane does not know (its telemetry is skipped) */
  deviceContext(deviceId: string): Promise<DeviceAiContext | undefined> | DeviceAiContext | undefined
  /**
   * The AI budgets the registry sets for the device (its tier's, its own on top), over the options'
   * (the configuration's are the defaults); read per provider request, so a change applies to the next one
   */
  limitsOf?(deviceId: string): Promise<AiLimitValues | undefined>
  /** jitter and insight ids; default cryptoRandom */
  random?: Random
  /** window flushes, back-off and timeouts; default systemTimers */
  timers?: Timers
  /**
   * Resolves an environment variable NAME from the options (providers.openai.apiKeyEnv,
   * providers.webhook.secretEnv) to its value. Only the composition root reads process.env; the
   * values are never logged.
   */
  secret?(name: string): string | undefined
}
