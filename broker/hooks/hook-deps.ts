import type { AedesOptions, AuthenticateError, Client } from 'aedes'
import type { Logger } from 'pino'
import { capStrings, capText, type Clock, type EventThrottle } from '../../certs/index.ts'
import type { AppSession, AppSessionRegistry } from '../app-sessions.ts'
import type { ClaimSession, ClaimSessionRegistry } from '../claim-sessions.ts'
import type { ClientLease } from '../client-lease.ts'
import { countBy, type BrokerLimitKind, type BrokerStats } from '../broker-stats.ts'
import type { AuditRecord, DeviceDirectory } from '../device-directory.ts'
import type { DeviceLimitsSource } from '../device-limits.ts'
import type { BrokerLimits } from '../limits.ts'
import { toConnackCode } from '../reason-codes.ts'
import type { Session, SessionRegistry } from '../sessions.ts'
import type { KeyedTokenBuckets, TokenBucketOptions } from '../token-bucket.ts'
import type { DeviceTopic, TopicGrants } from '../topics.ts'

// aedes declares its handler types but does not export them.
export type PreConnectHandler = NonNullable<AedesOptions['preConnect']>
export type AuthenticateHandler = NonNullable<AedesOptions['authenticate']>
export type AuthorizePublishHandler = NonNullable<AedesOptions['authorizePublish']>
export type AuthorizeSubscribeHandler = NonNullable<AedesOptions['authorizeSubscribe']>
export type AuthorizeForwardHandler = NonNullable<AedesOptions['authorizeForward']>

/** What the broker knows about one MQTT connection, from CONNECT on. */
export interface ConnectionContext {
  remoteAddress: string | null
  clientId: string
  keepalive: number
  protocolVersion: number
  /** the CONNECT's will topic; authenticate refuses a will the device could not publish itself */
  willTopic: string | null
  /** the CONNECT's clean-session flag (claim sessions must be clean) */
  clean: boolean
  /** set once authenticate accepts the device */
  session: Session | null
  /** set once authenticate accepts a claim session (never together with `session`) */
  claim: ClaimSession | null
  /** set once authenticate accepts an app (never together with the others) */
  app?: AppSession | null
  /**
   * When the connection's latest packet was read (ms, deps.clock): the packet budget's one clock read
   * per packet (packet-budget.ts), shared by that packet's PUBLISH buckets and DevicePublish.receivedAtMs
   */
  packetAtMs?: number
  /** the last topic this connection published to, parsed (core-listeners.ts: one parse per topic, not per message) */
  lastTopic?: { topic: string; parsed: DeviceTopic | null }
}

/** Everything the hook factories share; built once per broker by create-mqtt-core.ts. */
export interface HookDeps {
  directory: DeviceDirectory
  clock: Clock
  log: Logger
  limits: Readonly<BrokerLimits>
  sessions: SessionRegistry
  claimSessions: ClaimSessionRegistry
  appSessions: AppSessionRegistry
  /** a new session id (unique per connection within this broker) */
  nextSessionId(): number
  connections: WeakMap<Client, ConnectionContext>
  /**
   * per-device CONNECT budget (limits.connectRatePerClientId), keyed by device id: in memory, or in a
   * cluster in Redis (cluster-connect-rate.ts), which answers asynchronously
   */
  connectAttempts: { tryTake(key: string): boolean | Promise<boolean> }
  /** in a cluster: one live session per clientId across the nodes (client-lease.ts) */
  lease?: ClientLease
  /**
   * in a cluster: this node's aedes id. Wills a dead node stored are published by the others
   * (authorize-publish.ts), with no client, or with the device's new connection when it is already back here.
   */
  orphanWills?: { nodeId: string }
  /** per-device (per claim and address) PUBLISH packet and byte budgets (survive reconnects) */
  publishMessages: KeyedTokenBuckets
  publishBytes: KeyedTokenBuckets
  /** per-device (per claim and address) packet budget (limits.packetRate; packet-budget.ts) */
  packets: KeyedTokenBuckets
  /** a device's own limits (its tier's, its override), applied at CONNECT; absent: the global limits */
  limitsSource?: DeviceLimitsSource
  /** bounds audits and info logs of repeated refusals per key */
  throttle: EventThrottle
  /** the broker's counters (broker-stats.ts) */
  stats: BrokerStats
}

export const BROKER_ACTOR = 'broker'

/** What the authorize hooks need of either kind of session. */
export interface Principal {
  /** the device or claim session; the hooks set its closedBy */
  session: { closedBy: string | null; serial: string; remoteAddress: string | null; grants: TopicGrants }
  /** the audit subject (and audit throttle key): the device id, or `claim:<claimId>` */
  subject: string
  /**
   * the key of the PUBLISH budgets: the device id, or for a claim session `claim:<claimId>@<remote
   * address>`: the nonce is the client's choice, so keying by it would give a fresh budget per connect
   */
  key: string
  /** the log fields that name it */
  fields: { deviceId: string } | { clientId: string; claimId: string } | { clientId: string; appName: string }
}

/** One Principal per session: every packet of a connection asks (packet budget, then the publish hooks). */
const principals = new WeakMap<Session | ClaimSession | AppSession, Principal>()

export function principalOf(ctx: ConnectionContext | undefined): Principal | null {
  const owner = ctx?.session ?? ctx?.claim ?? ctx?.app
  if (!owner) return null
  let principal = principals.get(owner)
  if (!principal) {
    principal = describePrincipal(owner)
    principals.set(owner, principal)
  }
  return principal
}

function describePrincipal(owner: Session | ClaimSession | AppSession): Principal {
  // an app's budgets are keyed by its name, like a device's by its id: one app, one budget
  if ('name' in owner)
    return { session: owner, subject: owner.clientId, key: owner.clientId, fields: { clientId: owner.clientId, appName: owner.name } }
  if (!('claimId' in owner)) return { session: owner, subject: owner.deviceId, key: owner.deviceId, fields: { deviceId: owner.deviceId } }
  const subject = claimSubject(owner.claimId)
  return {
    session: owner,
    subject,
    key: `${subject}@${owner.remoteAddress ?? 'unknown'}`,
    fields: { clientId: owner.clientId, claimId: owner.claimId },
  }
}

/** The audit subject of a claim (as the control plane writes it for claim.refused). */
export function claimSubject(claimId: string): string {
  return `claim:${claimId}`
}

/**
 * The one way the broker records a refusal or a throttle: an audit record and an info log line, at most
 * once per interval per key (certs/event-throttle.ts; the key names the subject, the reason and, where it
 * varies, the address), the next one carrying the number suppressed meanwhile. Untrusted strings in
 * the details and log fields (clientId, topics …) are capped at 128 characters (capText).
 */
/**
 * A principal went over one of its budgets (`limit`: 'packets', 'messages', 'bytes'): marks its session
 * closed by the broker and records `device.throttled`, at most once per interval per subject. The caller
 * closes the connection.
 */
export function throttlePrincipal(
  deps: Pick<HookDeps, 'throttle' | 'directory' | 'stats'>,
  log: Logger,
  principal: Principal,
  over: { limit: BrokerLimitKind; bucket: TokenBucketOptions; code: string; details?: Record<string, unknown> },
): void {
  const { session, subject, fields } = principal
  countBy(deps.stats.limitHits, over.limit)
  session.closedBy = 'throttled'
  const where = { serial: session.serial, remoteAddress: session.remoteAddress }
  const clientId = 'clientId' in fields ? { clientId: fields.clientId } : {}
  throttledAudit(
    deps,
    log,
    `device.throttled:${subject}`,
    {
      actor: BROKER_ACTOR,
      action: 'device.throttled',
      subject,
      details: { limit: over.limit, ...over.details, ...over.bucket, ...where, ...clientId },
    },
    { ...fields, ...where, limit: over.limit, ...over.details, code: over.code },
    'device throttled',
  )
}

export function throttledAudit(
  deps: Pick<HookDeps, 'throttle' | 'directory'>,
  log: Logger,
  key: string,
  record: AuditRecord,
  logFields: object,
  msg: string,
): void {
  const hit = deps.throttle.hit(capText(key, 512))
  if (!hit.emit) return
  deps.directory.audit({
    ...record,
    subject: capText(record.subject),
    details: { ...capStrings(record.details ?? {}), suppressed: hit.suppressed },
  })
  log.info({ ...capStrings(logFields), suppressed: hit.suppressed }, msg)
}

/** An info log line at most once per interval per key, for refusals that are not audited. */
export function throttledLog(deps: Pick<HookDeps, 'throttle'>, log: Logger, key: string, logFields: object, msg: string): void {
  const hit = deps.throttle.hit(capText(key, 512))
  if (hit.emit) log.info({ ...capStrings(logFields), suppressed: hit.suppressed }, msg)
}

/** aedes reads the CONNACK return code from `err.returnCode` (reason-codes.ts decides it). */
export function withReturnCode<E extends Error>(err: E): E & AuthenticateError {
  return Object.assign(err, { returnCode: toConnackCode(err) }) as E & AuthenticateError
}

/** The remote address of an aedes connection (a TLSSocket in production, a fake in unit tests). */
export function remoteAddressOf(client: Client): string | null {
  const conn = client.conn as { remoteAddress?: unknown }
  return typeof conn.remoteAddress === 'string' ? conn.remoteAddress : null
}
