import { InMemoryDashboardSessionStore } from '../../../../provisioning/store/in-memory-dashboard-session-store.ts'
import { dashboardSessionStoreContract } from '../../../contract/dashboard-session-store.contract.ts'

// the engines run the same suite: integration/provisioning/sqlite-store-contracts.test.ts, integration/postgres/pg-store-contracts.test.ts
dashboardSessionStoreContract('InMemoryDashboardSessionStore', () => new InMemoryDashboardSessionStore())
