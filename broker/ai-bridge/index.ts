// broker/ai-bridge/: the AI telemetry bridge. Reached through broker/index.ts (docs/conventions.md §2).
export { attachAiBridge, type AiBridge } from './ai-bridge.ts'
export { resolveAiBridgeOptions } from './options.ts'
export { routeFor } from './routing.ts'
