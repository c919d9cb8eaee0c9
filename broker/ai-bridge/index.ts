// broker/ai-bridge/: the AI telemetry bridge. Reached through broker/index.ts (docs/conventions.md §2).
export { attachAiBridge, type AiBridge } from './ai-bridge.ts'
export { AI_BRIDGE_OPTIONS_SCHEMA, AI_LIMIT_VALUES_SCHEMA, resolveAiBridgeOptions } from './options.ts'
export { routeFor } from './routing.ts'
