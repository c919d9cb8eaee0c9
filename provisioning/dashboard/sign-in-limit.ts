import type { Logger } from 'pino'
import { capText, createEventThrottle, type Clock } from '../../certs/index.ts'
import type { RateLimit, RateLimiterFactory } from '../api/rate-limiter.ts'
import { DashboardSignInLimited } from '../errors.ts'
import type { AuditEntry } from '../store/registry-store.ts'

export interface SignInRateOptions {
  /** sign-in attempts per client address; default 10 at once, then one a minute */
  signInPerAddress?: RateLimit
  /** sign-in attempts from every address together; default 100 at once, then one a second */
  signInOverall?: RateLimit
}

export const DEFAULT_SIGN_IN_PER_ADDRESS: Readonly<RateLimit> = Object.freeze({ ratePerSecond: 1 / 60, burst: 10 })
export const DEFAULT_SIGN_IN_OVERALL: Readonly<RateLimit> = Object.freeze({ ratePerSecond: 1, burst: 100 })
const MAX_AUDITED_ADDRESSES = 1000

/**
 * The dashboard's sign-in, rate limited per client address and overall (a credential-guessing surface):
 * each attempt spends one of its address's and one of everyone's; past either, 429 GH_DASHBOARD_SIGN_IN_LIMITED
 * with Retry-After, audited (`dashboard.sign-in.limited`) at most once per refill time per address. A sign-in that
 * succeeds gives its address its budget back. In a cluster the buckets are in Redis (gatehouse.ts), shared by
 * every worker and node.
 */
export function createSignInLimit(
  deps: { rateLimiters: RateLimiterFactory; clock: Clock; log: Logger; audit?: (entry: Omit<AuditEntry, 'id'>) => Promise<void> },
  options: SignInRateOptions = {},
) {
  const perAddressLimit = options.signInPerAddress ?? DEFAULT_SIGN_IN_PER_ADDRESS
  const perAddress = deps.rateLimiters('sign-in-address', perAddressLimit)
  const overall = deps.rateLimiters('sign-in', options.signInOverall ?? DEFAULT_SIGN_IN_OVERALL)
  const intervalMs = Math.ceil((perAddressLimit.burst / perAddressLimit.ratePerSecond) * 1000)
  const throttle = createEventThrottle({ intervalMs, maxKeys: MAX_AUDITED_ADDRESSES }, deps.clock)

  async function refuse(address: string, scope: 'address' | 'overall', retryAfterSeconds: number): Promise<never> {
    const hit = throttle.hit(`${scope}:${address}`)
    if (hit.emit) {
      const details = { remoteAddress: address, scope, retryAfterSeconds, suppressed: hit.suppressed }
      deps.log.warn(details, 'dashboard sign-in rate limited')
      await deps
        .audit?.({ at: deps.clock.now(), actor: `address:${address}`, action: 'dashboard.sign-in.limited', subject: 'dashboard', details })
        .catch((err: unknown) => deps.log.error({ err }, 'audit write failed'))
    }
    throw Object.assign(new DashboardSignInLimited(retryAfterSeconds), { retryAfterSeconds })
  }

  return {
    /** Spends one attempt of this address and of everyone; GH_DASHBOARD_SIGN_IN_LIMITED past either. */
    async attempt(remoteAddress: string): Promise<void> {
      const address = capText(remoteAddress, 64)
      const mine = await perAddress.take(address)
      if (!mine.ok) return refuse(address, 'address', mine.retryAfterSeconds)
      const all = await overall.take('all')
      if (!all.ok) return refuse(address, 'overall', all.retryAfterSeconds)
    },
    /** The address signed in: its failed attempts are forgiven. */
    succeeded: (remoteAddress: string): Promise<void> => perAddress.forget(capText(remoteAddress, 64)),
    refused: (): number => perAddress.refused() + overall.refused(),
  }
}

export type SignInLimit = ReturnType<typeof createSignInLimit>
