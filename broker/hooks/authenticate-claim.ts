import type { AuthenticateError, Client } from 'aedes'
import type { Logger } from 'pino'
import { claimNonceFromClientId, type PeerIdentity } from '../../certs/index.ts'
import type { ClaimSession } from '../claim-sessions.ts'
import { DirectoryUnavailable } from '../errors.ts'
import { claimGrants } from '../topics.ts'
import type { ConnectRefusal } from './authenticate.ts'
import { withReturnCode, type ConnectionContext, type HookDeps } from './hook-deps.ts'

export interface ClaimConnect {
  client: Client
  ctx: ConnectionContext
  /** the verified claim certificate, inside its validity */
  identity: PeerIdentity
  /** from its CN `claim:<claimId>` */
  claimId: string
  /** answers CONNACK 5 with one connect.refused audit record (authenticate.ts) */
  refuse: (reason: ConnectRefusal, extra?: Record<string, unknown>) => void
  done: (err: AuthenticateError | null, success: boolean | null) => void
}

/**
 * The claim path of authenticate (docs/device-lifecycle.md "The exchange"): a claim certificate may
 * open a short provisioning session and nothing else.
 *
 *   clientId `claim:<nonce>` (else 'client-id-mismatch'), clean session (else
 *   'persistent-session-not-permitted'), no will ('will-not-permitted'), no live or connecting session
 *   with the same clientId ('client-id-in-use': no takeover), then directory.lookupClaim: an unknown
 *   claim certificate is 'unknown-claim', and a claim that can provision nothing now is refused too:
 *   'claim-revoked', 'claim-expired' (past its provisioning expiry) or 'claim-used-up'. A claim.revoked
 *   event while the lookup is in flight refuses it ('invalidated-during-connect').
 *
 * The session is registered in claim-sessions.ts, never among device sessions.
 */
export function authenticateClaim(deps: HookDeps, log: Logger, c: ClaimConnect): void {
  const { client, ctx, identity, claimId, refuse, done } = c

  const nonce = claimNonceFromClientId(ctx.clientId)
  if (nonce === null) return refuse('client-id-mismatch')
  if (!ctx.clean) return refuse('persistent-session-not-permitted')
  if (ctx.willTopic !== null) return refuse('will-not-permitted', { topic: ctx.willTopic })
  const clientId = ctx.clientId
  const pending = deps.claimSessions.reserve(clientId, claimId)
  if (pending === null) return refuse('client-id-in-use')

  Promise.resolve()
    .then(() => deps.directory.lookupClaim(identity, claimId))
    .then(
      (result) => {
        if (client.closed) return void deps.claimSessions.release(clientId)
        if (result.kind === 'refused') {
          deps.claimSessions.release(clientId)
          return refuse(result.reason)
        }
        if (result.claimId !== claimId) {
          deps.claimSessions.release(clientId)
          return refuse('claim-mismatch', { directoryClaimId: result.claimId })
        }
        // claim.revoked arrived while the lookup was in flight: the answer may predate it
        if (pending.revoked) {
          deps.claimSessions.release(clientId)
          return refuse('invalidated-during-connect', { event: 'claim.revoked' })
        }
        const now = deps.clock.now()
        const session: ClaimSession = {
          id: deps.nextSessionId(),
          claimId,
          serial: identity.serial,
          fingerprint: identity.fingerprint,
          nonce,
          clientId,
          remoteAddress: ctx.remoteAddress,
          client,
          grants: claimGrants(nonce),
          expiresAt: new Date(now.getTime() + deps.limits.claimSessionSeconds * 1000),
          validUntil: identity.notAfter,
          closedBy: null,
        }
        ctx.claim = session
        deps.claimSessions.add(session)
        client.conn.once('close', () => deps.claimSessions.remove(session))
        done(null, true)
      },
      (err: unknown) => {
        deps.claimSessions.release(clientId)
        const wrapped = withReturnCode(new DirectoryUnavailable({ cause: err }))
        log.error(
          { err, claimId, clientId, serial: identity.serial, remoteAddress: ctx.remoteAddress, code: wrapped.code },
          'claim lookup failed',
        )
        done(wrapped, null)
      },
    )
}
