import { finding, type Finding } from './finding.ts'
import type { FleetSnapshot } from './fleet-snapshot.ts'
import type { CheckOptions } from './run-checks.ts'

const DAY = 86_400_000
const ageDays = (s: FleetSnapshot, at: Date) => (s.now.getTime() - at.getTime()) / DAY

/** Active devices never seen by the broker (made more than a day ago), or not seen for silentDays. */
export function silentDevices(s: FleetSnapshot, o: CheckOptions): Finding[] {
  const active = s.devices.filter((d) => d.status === 'active')
  const disable = (ids: string[]) => `gatehouse device disable ${ids[0]} (each device no longer in use; gatehouse device enable undoes it)`
  return [
    ...finding(
      { id: 'device-never-seen', severity: 'low', title: 'active devices never seen', kind: 'device', fix: disable },
      active.filter((d) => d.lastSeen === null && ageDays(s, d.createdAt) >= 1).map((d) => d.id),
    ),
    ...finding(
      { id: 'device-silent', severity: 'low', title: `active devices not seen for ${o.silentDays} days`, kind: 'device', fix: disable },
      active.filter((d) => d.lastSeen !== null && ageDays(s, d.lastSeen) >= o.silentDays).map((d) => d.id),
    ),
  ]
}

/** Devices (not revoked) with limitHits or more refusal/limit rows in the audit log of the look-back window. */
export function devicesOverLimits(s: FleetSnapshot, o: CheckOptions): Finding[] {
  const counts = new Map<string, number>()
  for (const h of s.limitHits) counts.set(h.deviceId, (counts.get(h.deviceId) ?? 0) + 1)
  const known = new Set(s.devices.filter((d) => d.status !== 'revoked').map((d) => d.id))
  return finding(
    {
      id: 'device-over-limits',
      severity: 'medium',
      title: `devices refused or throttled ${o.limitHits}+ times in ${o.lookbackDays} days`,
      kind: 'device',
      fix: (ids) => `gatehouse audit --device ${ids[0]} (see which limit; fix the device, or gatehouse device disable ${ids[0]})`,
    },
    [...counts].filter(([id, n]) => n >= o.limitHits && known.has(id)).map(([id]) => id),
  )
}
