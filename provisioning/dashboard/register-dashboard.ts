import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { systemTimers, type Clock, type Random, type Timers } from '../../certs/index.ts'
import type { AiUsageService } from '../ai-usage/ai-usage-service.ts'
import type { ApiKeyService } from '../api-keys/api-key-service.ts'
import type { Presence } from '../api/devices-routes.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import type { SettingsService } from '../settings/settings-service.ts'
import { loadDashboardAssets } from './assets.ts'
import { dashboardRoutes } from './dashboard-routes.ts'
import { createFleetView, type AiBudgetOf, type FleetSignals, type FleetViewOptions } from './fleet-view.ts'
import { createLiveStream, type LiveStreamOptions } from './live-stream.ts'
import { createSessionStore, type SessionOptions } from './sessions.ts'

export interface DashboardDeps {
  authority: DeviceAuthority
  settings: Pick<SettingsService, 'getDevice'>
  apiKeys: Pick<ApiKeyService, 'verify' | 'get'>
  aiUsage: Pick<AiUsageService, 'listInsights' | 'usageFor'>
  presence: Presence
  /** connects, disconnects and control events, from the broker and the change feed (gatehouse.ts) */
  signals: FleetSignals
  aiBudget?: AiBudgetOf
  clock: Clock
  random: Random
  timers?: Timers
  log: Logger
}

export type DashboardOptions = SessionOptions & LiveStreamOptions & FleetViewOptions

/** Builds the dashboard's parts (sessions, fleet view, live stream, files) and registers its routes on the API's app. */
export function registerDashboard(app: FastifyInstance, deps: DashboardDeps, options: DashboardOptions = {}): void {
  const log = deps.log.child({ module: 'dashboard' })
  const fleet = createFleetView(deps, options)
  const live = createLiveStream({ signals: deps.signals, snapshot: fleet.overview, timers: deps.timers ?? systemTimers, log }, options)
  const sessions = createSessionStore(deps, options)
  app.register(dashboardRoutes, {
    authority: deps.authority,
    apiKeys: deps.apiKeys,
    sessions,
    fleet,
    live,
    assets: loadDashboardAssets(),
    clock: deps.clock,
    log,
  })
}
