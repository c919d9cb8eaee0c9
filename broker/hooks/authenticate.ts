import { applyDeviceLimits, deviceBuckets } from '../device-limits.ts'
import type { Client } from 'aedes'
import { appNameFromCommonName, claimIdFromCommonName, identityFromPeerCertificate, type PeerIdentity } from '../../certs/index.ts'
import { countBy, countRefused } from '../broker-stats.ts'
import { ConnectRateLimited, ConnectRefused, DirectoryUnavailable } from '../errors.ts'
import { sessionEnd, type Session } from '../sessions.ts'
import { canPublish } from '../topic-policy.ts'
import { deviceGrants } from '../topics.ts'
import { authenticateApp } from './authenticate-app.ts'
import { authenticateClaim } from './authenticate-claim.ts'
import {
  BROKER_ACTOR,
  claimSubject,
  remoteAddressOf,
  throttledAudit,
  withReturnCode,
  type AuthenticateHandler,
  type ConnectionContext,
  type HookDeps,
} from './hook-deps.ts'

/** Why a CONNECT was refused; recorded in the audit details and the log (not sent to the device). */
export type ConnectRefusal =
  | 'no-client-certificate'
  | 'certificate-unreadable'
  | 'not-a-client-certificate'
  | 'invalid-common-name'
  | 'client-id-mismatch'
  | 'connect-rate'
  | 'will-not-permitted'
  | 'device-mismatch'
  | 'invalidated-during-connect'
  | 'expired'
  | 'not-yet-valid'
  | 'unknown-device'
  | 'unknown-certificate'
  | 'revoked'
  | 'superseded'
  | 'disabled'
  // claim sessions (authenticate-claim.ts)
  | 'unknown-claim'
  | 'claim-revoked'
  | 'claim-expired'
  | 'claim-used-up'
  | 'claim-mismatch'
  | 'persistent-session-not-permitted'
  | 'client-id-in-use'
  // apps (authenticate-app.ts)
  | 'unknown-app'
  | 'app-revoked'
  | 'app-mismatch'

/** Reads of a device that moved while its CONNECT was being looked up, before the connect is refused. */
const MAX_REREADS = 3

const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2'
const ANY_EKU = '2.5.29.37.0'

/** The part of Node's tls.TLSSocket the hook reads; unit tests fake exactly this on the connection. */
interface PeerCertificateSource {
  authorized?: boolean
  getPeerCertificate?: (detailed?: boolean) => {
    raw?: Buffer
    ext_key_usage?: string[]
    subject?: { CN?: string | string[] }
    serialNumber: string
    fingerprint256: string
    valid_from: string
    valid_to: string
  }
}

/**
 * Authentication: peer certificate -> identity -> directory.lookup (one per CONNECT, nothing cached
 * here) -> the device must be active, and the MQTT clientId must equal the certificate CN (= device id).
 * Username and password play no part. A claim certificate (CN `claim:<claimId>`) takes the claim path
 * instead (authenticate-claim.ts).
 *
 * Every refusal answers CONNACK 5 "not authorized" (3.1.1; a directory failure and 'connect-rate',
 * a device over limits.connectRatePerClientId, answer 3 "server unavailable": back off, the
 * credentials are fine). It is audited as `connect.refused` and logged at info at most once per
 * interval per subject, reason and remote address (throttledAudit: the next one carries the count
 * suppressed), with the untrusted strings (clientId, will topic) capped at 128 characters: a flood of
 * refused connects cannot fill the database or the log.
 *
 * What is audited: refusals, takeovers, throttles and forced disconnects. Accepted connections are
 * not: they are high-volume (a fleet reconnecting after a network blip is thousands per minute) and
 * carry no decision worth keeping, so they go to the pino log at info ('device connected' /
 * 'device disconnected', with deviceId, serial and remoteAddress).
 */
export function createAuthenticate(deps: HookDeps): AuthenticateHandler {
  const log = deps.log.child({ module: 'broker.auth' })

  return (client, _username, _password, done) => {
    const ctx = contextOf(deps, client)
    let identity: PeerIdentity | null = null

    const refuse = (reason: ConnectRefusal, extra: Record<string, unknown> = {}): void => {
      countRefused(deps.stats, reason)
      if (reason === 'connect-rate') countBy(deps.stats.limitHits, 'connect-rate')
      const cn = identity?.commonName ?? null
      const deviceId = identity?.deviceId ?? null
      const serial = identity?.serial ?? null
      const claimId = cn !== null ? claimIdFromCommonName(cn) : null
      const appName = cn !== null ? appNameFromCommonName(cn) : null
      const subject =
        deviceId ??
        (claimId !== null
          ? claimSubject(claimId)
          : appName !== null
            ? `app:${appName}`
            : cn !== null
              ? `cn:${cn}`
              : serial !== null
                ? `serial:${serial}`
                : 'unknown')
      const err = withReturnCode(reason === 'connect-rate' ? new ConnectRateLimited(deviceId) : new ConnectRefused(reason))
      throttledAudit(
        deps,
        log,
        `connect.refused:${subject}:${reason}:${ctx.remoteAddress}`,
        {
          actor: BROKER_ACTOR,
          action: 'connect.refused',
          subject,
          details: { reason, serial, remoteAddress: ctx.remoteAddress, clientId: ctx.clientId, ...extra },
        },
        { deviceId, clientId: ctx.clientId, serial, remoteAddress: ctx.remoteAddress, code: err.code, reason, ...extra },
        'connect refused',
      )
      done(err, null)
    }

    // 1. The certificate, as the TLS listener verified it (chain to the device CA, validity, purpose).
    const conn = client.conn as PeerCertificateSource
    const pc = conn.authorized === true ? conn.getPeerCertificate?.() : undefined
    if (!pc?.raw || !pc.serialNumber) return refuse('no-client-certificate')
    try {
      identity = identityFromPeerCertificate(pc)
    } catch (err) {
      log.debug({ err, remoteAddress: ctx.remoteAddress }, 'peer certificate unreadable')
      return refuse('certificate-unreadable')
    }
    // OpenSSL already checks the purpose of client certificates (a serverAuth-only one fails verification
    // with INVALID_PURPOSE; test/integration/broker/connect.test.ts); checked again here from Node's
    // ext_key_usage so that the rule does not hang on a TLS library default.
    const eku = pc.ext_key_usage
    if (Array.isArray(eku) && eku.length > 0 && !eku.includes(CLIENT_AUTH_EKU) && !eku.includes(ANY_EKU)) {
      return refuse('not-a-client-certificate')
    }
    // TLS checked validity against the system time; the broker's clock is the one tests and audits use.
    const now = deps.clock.now().getTime()
    if (now > identity.notAfter.getTime()) return refuse('expired')
    if (now < identity.notBefore.getTime()) return refuse('not-yet-valid')
    const claimId = identity.commonName !== null ? claimIdFromCommonName(identity.commonName) : null
    if (claimId !== null) {
      if (Array.isArray(pc.subject?.CN)) return refuse('invalid-common-name')
      return authenticateClaim(deps, log, { client, ctx, identity, claimId, refuse, done })
    }
    const appName = identity.commonName !== null ? appNameFromCommonName(identity.commonName) : null
    if (appName !== null) {
      if (Array.isArray(pc.subject?.CN)) return refuse('invalid-common-name')
      return authenticateApp(deps, log, { client, ctx, identity, name: appName, refuse, done })
    }
    if (identity.deviceId === null) return refuse('invalid-common-name')
    const deviceId = identity.deviceId

    // 2. The CONNECT, checked before the directory is asked: cheap refusals first.
    if (ctx.clientId !== deviceId) return refuse('client-id-mismatch')
    // Keyed by the verified device id (never a clientId a certificate did not prove), so one device's
    // reconnect loop spends only its own budget.
    // (in a cluster the budget is in Redis, cluster-connect-rate.ts: the answer comes with the lookup)
    const allowed = deps.connectAttempts.tryTake(deviceId)
    if (allowed === false) return refuse('connect-rate')
    if (ctx.willTopic !== null && !canPublish(deviceId, ctx.willTopic).ok) {
      return refuse('will-not-permitted', { topic: ctx.willTopic })
    }

    // 3. The directory: is this certificate a live device? Asked on every CONNECT.
    const pending = deps.sessions.beginAuthentication(deviceId, identity.serial)
    const peer = identity
    // The device as the registry has it now: its certificate's status, tier and group, and its limits.
    const readDevice = async () => {
      const epoch = pending.epoch
      const result = await deps.directory.lookup(peer)
      // its tier's limits from the tier the directory just answered (read after the same catch-up; an event
      // in between moves the epoch, and the device is read again)
      const own = result.kind === 'active' ? await deps.limitsSource?.limitsOf(deviceId, result) : undefined
      return { result, own, epoch }
    }
    Promise.resolve(allowed)
      .then(async (ok) => {
        if (!ok) return null // the cluster's connect-rate limiter refused (the directory is then not asked)
        let read = await readDevice()
        // in a cluster: this connection's epoch of the clientId, before aedes announces it (client-lease.ts)
        if (read.result.kind === 'active' && deps.lease) await deps.lease.take(client, deviceId)
        // An event about the device arrived while it was read (a revoke, a new group, tier or limits): the
        // answer may predate it, so read it again; one that keeps moving is refused (the device retries).
        for (let i = 0; i < MAX_REREADS && read.epoch !== pending.epoch && pending.invalidatedBy === null; i++) read = await readDevice()
        return read
      })
      .then(
        (read) => {
          deps.sessions.endAuthentication(pending)
          if (client.closed) return // gone while we waited; aedes ignores a late answer
          if (read === null) return refuse('connect-rate')
          const { result, own } = read
          if (result.kind === 'refused') return refuse(result.reason)
          if (result.deviceId !== deviceId) return refuse('device-mismatch', { directoryDeviceId: result.deviceId })
          // A revoke/disable event arrived while the lookup was in flight: the answer may predate it.
          if (pending.invalidatedBy !== null) {
            return refuse('invalidated-during-connect', { event: pending.invalidatedBy })
          }
          if (read.epoch !== pending.epoch) return refuse('invalidated-during-connect', { event: pending.movedBy })
          // Its end: expiry, or the end of a renewal overlap (from the answer, or announced meanwhile).
          const end = sessionEnd(peer.notAfter, result.validUntil, pending.supersededAt)
          if (deps.clock.now().getTime() >= end.validUntil.getTime()) {
            return refuse(end.endReason === 'superseded' ? 'superseded' : 'expired')
          }
          const session: Session = {
            id: deps.nextSessionId(),
            deviceId,
            serial: peer.serial,
            fingerprint: peer.fingerprint,
            notBefore: peer.notBefore,
            notAfter: peer.notAfter,
            tier: result.tier,
            group: result.group,
            remoteAddress: ctx.remoteAddress,
            client,
            grants: deviceGrants(deviceId),
            ...end,
            closedBy: null,
          }
          // its tier's limits and its own (device-limits.ts), before its first packet after CONNACK
          if (own) applyDeviceLimits(deviceBuckets(deps), deps.limits, deviceId, own.broker)
          ctx.session = session
          const previous = deps.sessions.add(session)
          if (previous) takeover(previous, session)
          // 'device connected' / 'device disconnected' are logged by create-mqtt-core.ts on aedes events.
          client.conn.once('close', () => deps.sessions.remove(session))
          done(null, true)
        },
        (err: unknown) => {
          deps.sessions.endAuthentication(pending)
          countRefused(deps.stats, 'directory-unavailable')
          const wrapped = withReturnCode(new DirectoryUnavailable({ cause: err }))
          // a damaged or unreachable registry fails every device's lookup: one line per interval and cause, not one per CONNECT
          const causeCode = String((err as { code?: unknown } | null)?.code ?? '')
          const cause = causeCode.startsWith('GH_') ? causeCode.slice(0, 64) : 'uncoded'
          const hit = deps.throttle.hit(`device-lookup-failed:${cause}`)
          if (hit.emit)
            log.error(
              {
                err,
                deviceId,
                serial: peer.serial,
                remoteAddress: ctx.remoteAddress,
                code: wrapped.code,
                cause,
                suppressed: hit.suppressed,
              },
              'device lookup failed',
            )
          done(wrapped, null)
        },
      )
  }

  /**
   * A second connection with the same clientId takes the session over ([MQTT-3.1.4-2]; aedes closes
   * the old client when it registers the new one). Audited here, where both sides are known, at most
   * once per interval per device and address (a reconnect loop must not write a row per connect).
   */
  function takeover(previous: Session, next: Session): void {
    // closedBy also suppresses the old session's will: the device is not gone, it is back.
    previous.closedBy = 'takeover'
    throttledAudit(
      deps,
      log,
      `session.takeover:${next.deviceId}:${next.remoteAddress}`,
      {
        actor: BROKER_ACTOR,
        action: 'session.takeover',
        subject: next.deviceId,
        details: {
          serial: next.serial,
          remoteAddress: next.remoteAddress,
          previousSerial: previous.serial,
          previousRemoteAddress: previous.remoteAddress,
        },
      },
      { deviceId: next.deviceId, serial: next.serial, remoteAddress: next.remoteAddress, previousRemoteAddress: previous.remoteAddress },
      'session taken over',
    )
  }
}

function contextOf(deps: HookDeps, client: Client): ConnectionContext {
  let ctx = deps.connections.get(client)
  if (!ctx) {
    // preConnect always runs first; this only guards a hook wired without it.
    ctx = {
      remoteAddress: remoteAddressOf(client),
      clientId: client.id,
      keepalive: 0,
      protocolVersion: 4,
      willTopic: null,
      clean: true,
      session: null,
      claim: null,
    }
    deps.connections.set(client, ctx)
  }
  return ctx
}
