import type { AuthenticateError, Client } from 'aedes'
import type { Logger } from 'pino'
import type { PeerIdentity } from '../../certs/index.ts'
import type { AppSession } from '../app-sessions.ts'
import { DirectoryUnavailable } from '../errors.ts'
import { appGrants } from '../topics.ts'
import type { ConnectRefusal } from './authenticate.ts'
import { withReturnCode, type ConnectionContext, type HookDeps } from './hook-deps.ts'

export interface AppConnect {
  client: Client
  ctx: ConnectionContext
  /** the verified app certificate, inside its validity */
  identity: PeerIdentity
  /** from its CN `app:<name>` */
  name: string
  /** answers CONNACK 5 (or 3 for 'connect-rate') with one connect.refused audit record (authenticate.ts) */
  refuse: (reason: ConnectRefusal, extra?: Record<string, unknown>) => void
  done: (err: AuthenticateError | null, success: boolean | null) => void
}

/**
 * The app path of authenticate (docs/device-protocol.md "Apps"): an app certificate may open a session
 * that subscribes inside its grants and publishes nothing.
 *
 *   clientId = the CN `app:<name>` (else 'client-id-mismatch'), clean session (else
 *   'persistent-session-not-permitted': what an app gets is filtered when it is delivered, so nothing is
 *   stored for it while it is away), no will ('will-not-permitted'), the connect rate of its clientId
 *   ('connect-rate'), then directory.lookupApp: 'unknown-app' (also when the directory knows no apps) or
 *   'app-revoked'. An app.revoked event (of the app, or of this certificate) while the lookup is in flight refuses it
 *   ('invalidated-during-connect'). A second connection of the same app takes the session over, as for
 *   devices.
 */
export function authenticateApp(deps: HookDeps, log: Logger, c: AppConnect): void {
  const { client, ctx, identity, name, refuse, done } = c
  const clientId = `app:${name}`
  if (ctx.clientId !== clientId) return refuse('client-id-mismatch')
  if (!ctx.clean) return refuse('persistent-session-not-permitted')
  if (ctx.willTopic !== null) return refuse('will-not-permitted', { topic: ctx.willTopic })
  const lookupApp = deps.directory.lookupApp?.bind(deps.directory)
  if (!lookupApp) return refuse('unknown-app')
  const allowed = deps.connectAttempts.tryTake(clientId)
  if (allowed === false) return refuse('connect-rate')

  const pending = deps.appSessions.beginAuthentication(name, identity.serial)
  Promise.resolve(allowed)
    .then((ok) => (ok ? lookupApp(identity, name) : null))
    .then(
      (result) => {
        deps.appSessions.endAuthentication(pending)
        if (client.closed) return
        if (result === null) return refuse('connect-rate')
        if (result.kind === 'refused') return refuse(result.reason)
        if (result.name !== name) return refuse('app-mismatch', { directoryAppName: result.name })
        if (pending.revoked) return refuse('invalidated-during-connect', { event: 'app.revoked' })
        const session: AppSession = {
          id: deps.nextSessionId(),
          name,
          clientId,
          serial: identity.serial,
          fingerprint: identity.fingerprint,
          remoteAddress: ctx.remoteAddress,
          client,
          groups: result.groups === null ? null : new Set(result.groups),
          classes: result.classes,
          grants: appGrants(result.classes),
          validUntil: identity.notAfter,
          closedBy: null,
        }
        ctx.app = session
        const previous = deps.appSessions.add(session)
        if (previous) previous.closedBy = 'takeover'
        client.conn.once('close', () => deps.appSessions.remove(session))
        log.info(
          { appName: name, serial: identity.serial, remoteAddress: ctx.remoteAddress, groups: result.groups, classes: result.classes },
          'app connected',
        )
        done(null, true)
      },
      (err: unknown) => {
        deps.appSessions.endAuthentication(pending)
        const wrapped = withReturnCode(new DirectoryUnavailable({ cause: err }))
        log.error(
          { err, appName: name, serial: identity.serial, remoteAddress: ctx.remoteAddress, code: wrapped.code },
          'app lookup failed',
        )
        done(wrapped, null)
      },
    )
}
