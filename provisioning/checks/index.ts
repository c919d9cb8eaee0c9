// Fleet audit checks (`gatehouse check`, GET /v1/checks): pure checks over a snapshot of a data directory.
export { checkDataDir, checkFleet } from './check-fleet.ts'
export { SEVERITIES, isSeverity, type CheckReport, type Finding, type Severity } from './finding.ts'
export { DEFAULT_CHECK_OPTIONS, failsAt, runChecks, type CheckOptions } from './run-checks.ts'
