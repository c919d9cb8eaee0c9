import type { AedesOptions, Client } from 'aedes'
import type { Logger } from 'pino'
import type { Clock } from '../../certs/index.ts'
import type { AuditRecord, DeviceDirectory } from '../device-directory.ts'
import type { EventThrottle } from '../event-throttle.ts'
import type { BrokerLimits } from '../limits.ts'
import type { Session, SessionRegistry } from '../sessions.ts'
import type { KeyedTokenBuckets } from '../token-bucket.ts'

// aedes declares its handler types but does not export them.
export type PreConnectHandler = NonNullable<AedesOptions['preConnect']>
export type AuthenticateHandler = NonNullable<AedesOptions['authenticate']>
export type AuthorizePublishHandler = NonNullable<AedesOptions['authorizePublish']>
export type AuthorizeSubscribeHandler = NonNullable<AedesOptions['authorizeSubscribe']>

/** What the broker knows about one MQTT connection, from CONNECT on. */
export interface ConnectionContext {
  remoteAddress: string | null
  clientId: string
  keepalive: number
  protocolVersion: number
  /** the CONNECT's will topic; authenticate refuses a will the device could not publish itself */
  willTopic: string | null
  /** set once authenticate accepts the device */
  session: Session | null
}

/** Everything the hook factories share; built once per broker by create-mqtt-core.ts. */
export interface HookDeps {
  directory: DeviceDirectory
  clock: Clock
  log: Logger
  limits: Readonly<BrokerLimits>
  sessions: SessionRegistry
  connections: WeakMap<Client, ConnectionContext>
  /** per-device PUBLISH packet and byte budgets (survive reconnects) */
  publishMessages: KeyedTokenBuckets
  publishBytes: KeyedTokenBuckets
  /** bounds audits and info logs of repeated refusals per key */
  throttle: EventThrottle
}

export const BROKER_ACTOR = 'broker'

/** Audit + info log for repeated events, at most once per interval per key (event-throttle.ts). */
export function throttledAudit(
  deps: Pick<HookDeps, 'throttle' | 'directory'>,
  log: Logger,
  key: string,
  record: AuditRecord,
  logFields: object,
  msg: string,
): void {
  const hit = deps.throttle.hit(key)
  if (!hit.emit) return
  deps.directory.audit({ ...record, details: { ...record.details, suppressed: hit.suppressed } })
  log.info({ ...logFields, suppressed: hit.suppressed }, msg)
}

/** The remote address of an aedes connection (a TLSSocket in production, a fake in unit tests). */
export function remoteAddressOf(client: Client): string | null {
  const conn = client.conn as { remoteAddress?: unknown }
  return typeof conn.remoteAddress === 'string' ? conn.remoteAddress : null
}
