// The throttle moved to certs/ (the pure toolkit both planes share) so that the control plane's
// refusals (claim.refused, renewal.refused) are throttled by the same mechanism as the broker's.
export { createEventThrottle, type EventThrottle } from '../certs/index.ts'
