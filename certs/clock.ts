/** The only source of "now" for certs/, provisioning/ and broker/ (docs/conventions.md §13). */
export interface Clock {
  now(): Date
  /**
   * The same instant as now().getTime(), without making a Date (optional: the per-packet paths read the
   * clock once per packet; read it through clockMs()).
   */
  nowMs?(): number
}

export const systemClock: Clock = { now: () => new Date(), nowMs: () => Date.now() }

/** The clock's time in ms, as a function read on hot paths: its nowMs when it has one, now().getTime() otherwise. */
export function clockMs(clock: Clock): () => number {
  const nowMs = clock.nowMs
  return nowMs !== undefined ? nowMs.bind(clock) : () => clock.now().getTime()
}
