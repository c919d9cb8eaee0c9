// Moved to broker/timers.ts (the session sweep uses them too); kept so the bridge's imports stay short.
export { sleep, systemTimers, type Timers } from '../timers.ts'
