import type { RegistryStore } from '../registry-store.ts'

/**
 * A store interface with every method returning a Promise of what it returns now: the shape issue 13's
 * async-store change gives provisioning/store/'s interfaces. Only PgRegistryStore still implements it (the
 * sibling stores implement their async interfaces); it implements RegistryStore once that is async.
 */
export type Async<T> = {
  [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : T[K]
}

/** RegistryStore, async, with its exceptions: listener registration and the audit failure count stay synchronous, transaction takes an async fn. */
export type AsyncRegistryStore = Omit<Async<RegistryStore>, 'transaction' | 'onEventsCommitted' | 'onRemoteEvents' | 'auditWriteFailures'> &
  Pick<RegistryStore, 'onEventsCommitted' | 'onRemoteEvents' | 'auditWriteFailures'> & {
    transaction<T>(fn: () => Promise<T>): Promise<T>
  }
