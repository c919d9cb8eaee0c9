import type { Clock } from '../certs/index.ts'
import type { BrokerLimits } from './limits.ts'
import { createKeyedTokenBuckets } from './token-bucket.ts'

/**
 * Per-address admission, decided on the raw TCP connection before any TLS work: at most
 * maxConnectionsPerIp open at once and connectionRatePerIp new ones per second (token bucket).
 * A refused connection costs the broker one accept and one close, not a handshake.
 */
export type GateDecision = { ok: true; release: () => void } | { ok: false; reason: 'too-many-connections' | 'connection-rate' }

export interface ConnectionGate {
  admit(remoteAddress: string): GateDecision
  /** open connections from this address (tests, metrics) */
  openFrom(remoteAddress: string): number
}

export function createConnectionGate(
  limits: Pick<BrokerLimits, 'maxConnectionsPerIp' | 'connectionRatePerIp' | 'maxTrackedKeys'>,
  clock: Clock,
): ConnectionGate {
  const open = new Map<string, number>()
  const rate = createKeyedTokenBuckets({ ...limits.connectionRatePerIp, maxKeys: limits.maxTrackedKeys }, clock)

  return {
    admit(address) {
      const current = open.get(address) ?? 0
      if (current >= limits.maxConnectionsPerIp) return { ok: false, reason: 'too-many-connections' }
      if (!rate.tryTake(address)) return { ok: false, reason: 'connection-rate' }
      open.set(address, current + 1)
      let released = false
      return {
        ok: true,
        release() {
          if (released) return
          released = true
          const n = (open.get(address) ?? 1) - 1
          if (n <= 0) open.delete(address)
          else open.set(address, n)
        },
      }
    },
    openFrom: (address) => open.get(address) ?? 0,
  }
}
