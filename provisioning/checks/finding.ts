/**
 * What a fleet check reports (docs/api.md, "Fleet checks"): a finding names its check, how bad it is,
 * the objects concerned (a capped list with the full count) and a concrete command that fixes it.
 */
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const
export type Severity = (typeof SEVERITIES)[number]

export type ObjectKind = 'device' | 'claim' | 'api-key' | 'settings-layer' | 'ca-certificate' | 'crl' | 'file'

export interface Finding {
  /** the check's id, e.g. `certificate-expiring-7d` */
  id: string
  severity: Severity
  title: string
  objects: { kind: ObjectKind; ids: string[]; count: number }
  /** what to do: a concrete command */
  fix: string
}

export interface CheckReport {
  checkedAt: string
  findings: Finding[]
  /** findings per severity */
  counts: Record<Severity, number>
}

/** At most this many ids are listed per finding; `count` has them all. */
export const MAX_LISTED = 20

/** A finding over `ids`, or none when the list is empty. */
export function finding(
  base: Omit<Finding, 'objects' | 'fix'> & { kind: ObjectKind; fix: (ids: string[]) => string },
  ids: readonly string[],
): Finding[] {
  if (ids.length === 0) return []
  const listed = [...ids].sort().slice(0, MAX_LISTED)
  return [
    {
      id: base.id,
      severity: base.severity,
      title: base.title,
      objects: { kind: base.kind, ids: listed, count: ids.length },
      fix: base.fix(listed),
    },
  ]
}

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s)
}
