/** The only source of "now" for certs/, provisioning/ and broker/ (docs/conventions.md §13). */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }
