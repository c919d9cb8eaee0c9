import type { Clock } from '../../certs/index.ts'
import type { AiUsageService } from '../ai-usage/ai-usage-service.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import type { Presence } from '../api/devices-routes.ts'
import type { SettingsService } from '../settings/settings-service.ts'
import type { AuditEntry } from '../store/registry-store.ts'
import { certificateView, deviceView } from '../views.ts'

/** What the dashboard needs from the broker, declared here and wired by gatehouse.ts (the seam pattern). */
export interface FleetSignals {
  /** devices connected now, in this process */
  connectedDeviceIds(): string[]
  /** called on every control event, every device connect or disconnect and every refused connection; returns the unsubscribe */
  onChange(listener: () => void): () => void
  /** the top 10 devices by messages in over the recent window (broker/device-activity.ts) */
  busiestDevices(): BusiestDevices
  /** AI telemetry messages throttled since start, by tier; {} without the AI bridge */
  aiThrottledByTier(): Record<string, number>
  /** a device's last connects and disconnects in this process, newest first (broker/connection-history.ts) */
  connectionHistory(deviceId: string): ConnectionEvent[]
}

export interface ConnectionEvent {
  at: string
  event: 'connect' | 'disconnect'
  remoteAddress: string | null
  serial: string
  /** why a session closed; null for a connect */
  reason: string | null
}

export interface BusiestDevices {
  /** the counts cover from here to now */
  since: string
  devices: { deviceId: string; messagesIn: number }[]
  /** messages of devices past the broker's bound, attributed to none */
  untracked: number
}

/** A device's AI budget per day (its tier's limits with its own overrides), or null without the AI bridge. */
export type AiBudgetOf = (deviceId: string, tier: string) => Promise<{ dailyRequests: number; dailyTokens: number } | null>

export interface FleetViewDeps {
  authority: DeviceAuthority
  settings: Pick<SettingsService, 'getDevice'>
  aiUsage: Pick<AiUsageService, 'listInsights' | 'usageFor'>
  presence: Presence
  signals: FleetSignals
  aiBudget?: AiBudgetOf
  clock: Clock
}

export interface FleetViewOptions {
  /** the scan behind the expiry timeline, sync state and AI usage reads at most this many devices; default 10 000 */
  maxScanDevices?: number
  /** and is reused for this long; default 30 s */
  scanTtlMs?: number
}

const DAY_MS = 86_400_000
const WEEKS = 53 // a year and a bit: the default validity (365 days) falls inside
const PAGE = 500
const LISTED_CONNECTED = 100

const auditView = (e: AuditEntry) => ({
  id: e.id,
  at: e.at.toISOString(),
  actor: e.actor,
  action: e.action,
  subject: e.subject,
  details: JSON.stringify(e.details).slice(0, 300),
})

/** The scan's AI usage by tier (cached), each row with the live throttle count; a tier only throttled gets a row too. */
function withThrottles<S extends { aiByTier: { tier: string; devices: number; requests: number; tokens: number }[] }>(
  scan: S,
  throttled: Record<string, number>,
): S {
  const rows = scan.aiByTier.map((t) => ({ ...t, throttled: throttled[t.tier] ?? 0 }))
  for (const [tier, n] of Object.entries(throttled))
    if (!rows.some((t) => t.tier === tier)) rows.push({ tier, devices: 0, requests: 0, tokens: 0, throttled: n })
  return { ...scan, aiByTier: rows.sort((a, b) => a.tier.localeCompare(b.tier)) }
}

/** The dashboard's read side: one snapshot of the fleet (the overview and its live stream) and one of a device. */
export function createFleetView(deps: FleetViewDeps, options: FleetViewOptions = {}) {
  const { authority, clock } = deps
  const maxScan = options.maxScanDevices ?? 10_000
  const ttl = options.scanTtlMs ?? 30_000
  let cached: { at: number; scan: Awaited<ReturnType<typeof scanFleet>> } | undefined

  /** One pass over the registry: certificate expiry by week, settings sync by group, AI usage today by tier. */
  async function scanFleet() {
    const now = clock.now().getTime()
    const expiringByWeek = new Array<number>(WEEKS).fill(0)
    let expired = 0
    let later = 0
    const groups = new Map<string, { group: string; inSync: number; outOfSync: number }>()
    const tiers = new Map<string, { tier: string; devices: number; requests: number; tokens: number }>()
    let scanned = 0
    let after: string | undefined
    while (scanned < maxScan) {
      const page = await authority.listDevices({ status: 'active', limit: Math.min(PAGE, maxScan - scanned), ...(after && { after }) })
      for (const d of page) {
        const notAfter = Math.max(
          0,
          ...(await authority.listCertificates(d.id)).filter((c) => c.status === 'active').map((c) => c.notAfter.getTime()),
        )
        const week = Math.floor((notAfter - now) / (7 * DAY_MS))
        if (notAfter <= now) expired++
        else if (week < WEEKS) expiringByWeek[week] = (expiringByWeek[week] ?? 0) + 1
        else later++
        const g = groups.get(d.group ?? '(none)') ?? { group: d.group ?? '(none)', inSync: 0, outOfSync: 0 }
        ;(await deps.settings.getDevice(d.id)).inSync ? g.inSync++ : g.outOfSync++
        groups.set(g.group, g)
        const t = tiers.get(d.tier) ?? { tier: d.tier, devices: 0, requests: 0, tokens: 0 }
        const today = (await deps.aiUsage.usageFor(d.id, 1)).total
        t.devices++
        t.requests += today.requests
        t.tokens += today.tokens
        tiers.set(d.tier, t)
      }
      scanned += page.length
      after = page.at(-1)?.id
      if (page.length === 0 || !after) break
    }
    return {
      at: new Date(now).toISOString(),
      scanned,
      truncated: scanned >= maxScan,
      expiry: {
        weekStarts: expiringByWeek.map((_, i) => new Date(now + i * 7 * DAY_MS).toISOString()),
        counts: expiringByWeek,
        expired,
        later,
      },
      settingsByGroup: [...groups.values()].sort((a, b) => a.group.localeCompare(b.group)),
      aiByTier: [...tiers.values()].sort((a, b) => a.tier.localeCompare(b.tier)),
    }
  }

  async function fleetScan() {
    const now = clock.now().getTime()
    if (!cached || now - cached.at >= ttl) cached = { at: now, scan: await scanFleet() }
    return cached.scan
  }

  return {
    async overview() {
      const connected = deps.signals.connectedDeviceIds().sort()
      return {
        at: clock.now().toISOString(),
        devices: {
          registered: await authority.countDevices(),
          active: await authority.countDevices({ status: 'active' }),
          disabled: await authority.countDevices({ status: 'disabled' }),
          revoked: await authority.countDevices({ status: 'revoked' }),
          connected: connected.length,
        },
        connectedDevices: connected.slice(0, LISTED_CONNECTED),
        recentAudit: (await authority.listAudit({ limit: 20 })).map(auditView),
        refusedConnections: (await authority.listAudit({ action: 'connect.refused', limit: 10 })).map(auditView),
        busiestDevices: deps.signals.busiestDevices(),
        fleet: withThrottles(await fleetScan(), deps.signals.aiThrottledByTier()),
      }
    },

    async device(id: string) {
      const { device, certificates } = await authority.getDevice(id)
      const usage = await deps.aiUsage.usageFor(device.id, 30)
      const today = usage.days.at(-1) ?? { requests: 0, tokens: 0 }
      return {
        device: deviceView(device),
        certificates: certificates.map(certificateView),
        connected: deps.presence.isConnected(device.id),
        lastSeen: (await deps.presence.lastSeen(device.id))?.toISOString() ?? null,
        connections: deps.signals.connectionHistory(device.id),
        settings: await deps.settings.getDevice(device.id),
        insights: await deps.aiUsage.listInsights(device.id, 10),
        usage: {
          today: { requests: today.requests, tokens: today.tokens },
          last30Days: usage.total,
          budget: (await deps.aiBudget?.(device.id, device.tier)) ?? null,
        },
        audit: (await authority.listAudit({ subject: device.id, limit: 20 })).map(auditView),
      }
    },
  }
}

export type FleetView = ReturnType<typeof createFleetView>
