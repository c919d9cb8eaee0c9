// provisioning/limits/: per-tier and per-device limits in the registry (docs/architecture.md, "The limits").
export { cachedLimits } from './cached-limits.ts'
export { createLimitsService, NO_LIMITS_POLICY, type LimitsPolicy, type LimitsService } from './limits-service.ts'
