import { caExpiry, certificateExpiry, sharedKeys, staleCrls } from './certificate-checks.ts'
import { apiKeyHygiene, claimBounds, plainSecrets } from './credential-checks.ts'
import { looseFileModes, unencryptedKeys } from './data-dir-checks.ts'
import { devicesOverLimits, silentDevices } from './device-checks.ts'
import { SEVERITIES, severityRank, type CheckReport, type Finding, type Severity } from './finding.ts'
import type { FleetSnapshot } from './fleet-snapshot.ts'

export interface CheckOptions {
  /** a device not seen for this many days is silent (default 30) */
  silentDays: number
  /** refusal/limit rows of one device in the look-back window that make a finding (default 3) */
  limitHits: number
  /** how far back the audit log is read for limit hits, days (default 7) */
  lookbackDays: number
}

export const DEFAULT_CHECK_OPTIONS: CheckOptions = { silentDays: 30, limitHits: 3, lookbackDays: 7 }

/** The fleet checks (docs/conventions.md §5): each a pure function of the snapshot; a new check is one entry and one test. */
export const FLEET_CHECKS: readonly ((s: FleetSnapshot, o: CheckOptions) => Finding[])[] = [
  certificateExpiry,
  caExpiry,
  sharedKeys,
  staleCrls,
  silentDevices,
  devicesOverLimits,
  claimBounds,
  apiKeyHygiene,
  plainSecrets,
  unencryptedKeys,
  looseFileModes,
]

/** Runs every check; findings worst first, then by id. */
export function runChecks(snapshot: FleetSnapshot, options: CheckOptions = DEFAULT_CHECK_OPTIONS): CheckReport {
  const findings = FLEET_CHECKS.flatMap((check) => check(snapshot, options)).sort(
    (a, b) => severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id),
  )
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length])) as Record<Severity, number>
  return { checkedAt: snapshot.now.toISOString(), findings, counts }
}

/** Whether a report has a finding at or above this severity (the CLI's --fail-on). */
export function failsAt(report: CheckReport, failOn: Severity): boolean {
  return report.findings.some((f) => severityRank(f.severity) >= severityRank(failOn))
}
