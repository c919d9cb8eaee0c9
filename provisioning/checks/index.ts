// Fleet audit checks (`gatehouse check`, GET /v1/checks): pure checks over a snapshot of a data directory.
export { checkDataDir, checkFleet } from './check-fleet.ts'
export { SEVERITIES, type CheckReport, type Severity } from './finding.ts'
export { failsAt, type CheckOptions } from './run-checks.ts'
