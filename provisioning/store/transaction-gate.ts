import { AsyncLocalStorage } from 'node:async_hooks'

/** How one database begins, commits and rolls back its transaction (SQLite: BEGIN IMMEDIATE, COMMIT, ROLLBACK). */
export interface TransactionHooks {
  begin(): void
  /** on failure it leaves no transaction open (rolls back) and throws */
  commit(): void
  rollback(): void
  /** the coded error a call's failure becomes (SQLite: storeFailure), or undefined to rethrow it as is */
  failure?(err: unknown): Error | undefined
}

/**
 * The transactions of one database, shared by all its stores (registry, settings, claims, API keys, limits,
 * routes): docs/architecture.md, "The store seam". The open transaction is carried in an AsyncLocalStorage,
 * so a store call made inside `transaction(fn)`, at any depth of awaits, joins it, and a call from any other
 * async flow (another request interleaving at an await) waits until it has ended: one connection, one
 * transaction at a time, and never a write landing inside someone else's transaction. Nested transaction()
 * calls join the outer one; a throw rolls back and rethrows.
 *
 * `fn` should await only store calls and computation: awaiting something that itself waits for a store call
 * from another flow would wait for this transaction to end, which waits for fn.
 */
export class TransactionGate {
  readonly #flow = new AsyncLocalStorage<object>()
  readonly #hooks: TransactionHooks
  #open: object | undefined
  #ended: Promise<void> = Promise.resolve()

  constructor(hooks: TransactionHooks) {
    this.#hooks = hooks
  }

  /** true inside the open transaction's async flow */
  inTransaction(): boolean {
    return this.#open !== undefined && this.#flow.getStore() === this.#open
  }

  /**
   * Runs one store call: at once when no transaction is open or inside this flow's own (no await, so a
   * synchronous implementation resolves at once), else after the open transaction has ended. A call that
   * throws, a read as well as a write, fails with the coded error `failure` makes of it (docs/conventions.md §35).
   */
  async run<T>(call: () => T): Promise<T> {
    while (this.#open !== undefined && this.#flow.getStore() !== this.#open) await this.#ended
    try {
      return call()
    } catch (err) {
      throw this.#hooks.failure?.(err) ?? err
    }
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction()) return fn()
    while (this.#open !== undefined) await this.#ended
    const tx = {}
    let end = (): void => {}
    this.#ended = new Promise((resolve) => {
      end = resolve
    })
    this.#open = tx
    try {
      this.#hooks.begin()
      let result: T
      try {
        result = await this.#flow.run(tx, fn)
      } catch (err) {
        this.#hooks.rollback()
        throw err
      }
      this.#hooks.commit()
      return result
    } finally {
      this.#open = undefined
      // No transaction open: no flow needs its store. While an AsyncLocalStorage is enabled, Node 20 runs
      // async hooks for every promise, timer and socket callback of the process (the broker's publish
      // path too: ~4% of its CPU per message); the next transaction's run() enables it again. Flows that
      // began inside this transaction keep its (now closed) object, which never equals a later one.
      this.#flow.disable()
      end()
    }
  }
}
