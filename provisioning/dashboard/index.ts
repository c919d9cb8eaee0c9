// The operators' dashboard in the browser, served by the HTTP API's server (buildApi registers it).
export { registerDashboard, type DashboardOptions } from './register-dashboard.ts'
export type { AiBudgetOf, FleetSignals } from './fleet-view.ts'
