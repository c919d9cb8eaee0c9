/** The only source of "now" for certs/, provisioning/ and broker/ (CONVENTIONS.md §13). */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }
