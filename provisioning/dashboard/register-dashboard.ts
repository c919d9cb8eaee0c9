import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { systemTimers, type Clock, type Random, type Timers } from '../../certs/index.ts'
import type { AiUsageService } from '../ai-usage/ai-usage-service.ts'
import type { ApiKeyService } from '../api-keys/api-key-service.ts'
import type { Presence } from '../api/devices-routes.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { memoryRateLimiters, type RateLimiterFactory } from '../api/rate-limiter.ts'
import type { SettingsService } from '../settings/settings-service.ts'
import type { AuditEntry } from '../store/registry-store.ts'
import type { DashboardSessionStore } from '../store/dashboard-session-store.ts'
import { loadDashboardAssets } from './assets.ts'
import { dashboardRoutes } from './dashboard-routes.ts'
import { createFleetView, type AiBudgetOf, type FleetSignals, type FleetViewOptions } from './fleet-view.ts'
import { createLiveStream, type LiveStreamOptions } from './live-stream.ts'
import { createSessionStore, type SessionOptions } from './sessions.ts'
import { createSignInLimit, type SignInRateOptions } from './sign-in-limit.ts'

export interface DashboardDeps {
  authority: DeviceAuthority
  settings: Pick<SettingsService, 'getDevice'>
  apiKeys: Pick<ApiKeyService, 'verify' | 'get'>
  aiUsage: Pick<AiUsageService, 'listInsights' | 'usageFor'>
  presence: Presence
  /** connects, disconnects and control events, from the broker and the change feed (gatehouse.ts) */
  signals: FleetSignals
  aiBudget?: AiBudgetOf
  /** where sessions are kept: the registry's database (gatehouse.ts); default in memory */
  sessions?: DashboardSessionStore
  /** where the sign-in limits keep their buckets (Redis in a cluster); default memory */
  rateLimiters?: RateLimiterFactory
  /** the audit log, for sign-ins refused over the limit (once per window per address) */
  audit?: (entry: Omit<AuditEntry, 'id'>) => Promise<void>
  clock: Clock
  random: Random
  timers?: Timers
  log: Logger
}

export type DashboardOptions = SessionOptions & LiveStreamOptions & FleetViewOptions & SignInRateOptions

/** Builds the dashboard's parts (sessions, fleet view, live stream, files) and registers its routes on the API's app. */
export function registerDashboard(app: FastifyInstance, deps: DashboardDeps, options: DashboardOptions = {}): void {
  const log = deps.log.child({ module: 'dashboard' })
  const fleet = createFleetView(deps, options)
  const live = createLiveStream({ signals: deps.signals, snapshot: fleet.overview, timers: deps.timers ?? systemTimers, log }, options)
  const sessions = createSessionStore(
    { clock: deps.clock, random: deps.random, log, ...(deps.sessions && { store: deps.sessions }) },
    options,
  )
  app.register(dashboardRoutes, {
    authority: deps.authority,
    apiKeys: deps.apiKeys,
    sessions,
    signIn: createSignInLimit(
      {
        rateLimiters: deps.rateLimiters ?? memoryRateLimiters(deps.clock),
        clock: deps.clock,
        log,
        ...(deps.audit && { audit: deps.audit }),
      },
      options,
    ),
    fleet,
    live,
    assets: loadDashboardAssets(),
    clock: deps.clock,
    log,
  })
}
