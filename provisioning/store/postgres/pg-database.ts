import { AsyncLocalStorage } from 'node:async_hooks'
import pg from 'pg'
import { publicKeySha256, systemTimers, type Timers } from '../../../certs/index.ts'
import { StoreSchemaTooNew } from '../../errors.ts'
import { describeUrl, pgFailure } from './pg-failure.ts'
import { pgMigrations } from './migrations.ts'

export type Row = Record<string, unknown>

/** The NOTIFY channel a commit that appended events signals on; its payload is empty (the feed reads by id). */
export const EVENTS_CHANNEL = 'gatehouse_events'
/** Advisory lock keys (one 64-bit space per database): schema migrations, and the registry's one writer. */
const MIGRATE_LOCK = 0x6761_7465_0001
const WRITER_LOCK = 0x6761_7465_0002
/**
 * TCP keepalive on every connection (the pool's and LISTEN's): after this long without traffic the kernel
 * probes the server (Node 20's libuv: every 1 s, 10 probes), so a half-open connection (a server or a network
 * gone without a FIN) errors within about 20 s: LISTEN reconnects and catches up by id, and the pool drops an
 * idle connection before a query waits on it for the kernel's retransmission timeout (minutes).
 */
export const KEEPALIVE_DELAY_MS = 10_000

/** The longest a registry statement may run before the server cancels it (GH_STORE_TIMEOUT): `databaseStatementTimeoutMs`. */
export const STATEMENT_TIMEOUT_MS = 15_000

export interface PgDatabaseOptions {
  /** pool size (default 10) */
  poolSize?: number
  /**
   * statement_timeout of every connection (ms, default STATEMENT_TIMEOUT_MS): a statement running longer is
   * cancelled by the server and fails with GH_STORE_TIMEOUT, so a hung query cannot hold a caller (a CONNECT's
   * registry read) forever; 0 turns it off (`gatehouse migrate`'s copy). Migrations run without it.
   */
  statementTimeoutMs?: number
  /** how long to wait for a connection before GH_STORE_UNREACHABLE (ms, default 5000) */
  connectTimeoutMs?: number
  /** how long a transaction waits for the writer lock before GH_STORE_LOCKED (ms, default 5000: SQLite's busy timeout) */
  lockTimeoutMs?: number
  /** application_name of the pool's connections (pg_stat_activity); LISTEN's is this with `-listen` */
  applicationName?: string
  /** told about errors of idle connections and of the listener (the pool and the listener recover by themselves) */
  onError?: (err: Error) => void
  timers?: Timers
}

export interface ListenOptions {
  /** first reconnect delay (ms, default 100), doubling up to maxDelayMs (default 5000) */
  minDelayMs?: number
  maxDelayMs?: number
}

export interface PgListener {
  /** true while LISTEN is in place */
  connected(): boolean
  stop(): Promise<void>
}

interface TxContext {
  client: pg.PoolClient
  events: boolean
  /** whether it holds the writer lock (events may be appended only under it: their ids must commit in order) */
  writerLock: boolean
  /** false once committed or rolled back: a callback made inside fn that runs later (a timer) is outside it */
  open: boolean
}

/**
 * One PostgreSQL database shared by every store of the registry (as one SQLite connection is): a pool,
 * and the open transaction carried in an AsyncLocalStorage, so every store call made inside
 * `transaction(fn)` (any store, however deep) runs on that transaction's connection, nested calls join
 * it, and calls outside it take another connection from the pool.
 *
 * Every transaction takes the registry's writer lock first (`pg_advisory_xact_lock`, released at COMMIT
 * or ROLLBACK), so writers are serialised across every node exactly as SQLite's BEGIN IMMEDIATE
 * serialises them across processes: the services' read-check-write steps (a claim's last use, a
 * renewal's overlap) stay as safe as they are on SQLite, and event ids, handed out under that lock,
 * become visible in id order (a reader polling `seq > last` never skips one committed later with a lower
 * id). A transaction that appended events ends with `pg_notify('gatehouse_events', '')` before COMMIT,
 * delivered to listeners only if it commits.
 */
export class PgDatabase {
  readonly #pool: pg.Pool
  readonly #config: pg.ClientConfig
  readonly #tx = new AsyncLocalStorage<TxContext>()
  /** transactions open now: #tx is disabled while there is none (transaction-gate.ts says why) */
  #openTransactions = 0
  readonly #listeners = new Set<() => void>()
  readonly #where: string
  readonly #lockTimeoutMs: number
  readonly #onError: (err: Error) => void
  readonly #timers: Timers
  readonly #listening = new Set<PgListener>()
  #closed = false

  private constructor(url: string, options: PgDatabaseOptions) {
    this.#where = describeUrl(url)
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 5000
    this.#onError = options.onError ?? (() => {})
    this.#timers = options.timers ?? systemTimers
    this.#config = {
      connectionString: url,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      application_name: options.applicationName ?? 'gatehouse',
      statement_timeout: options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    }
    this.#pool = new pg.Pool({ ...this.#config, max: options.poolSize ?? 10 })
    // an idle connection cut by the server: the pool drops it and opens another when asked
    this.#pool.on('error', (err) => this.#onError(err))
  }

  /** Connects and brings the schema up to date (under an advisory lock: nodes starting together take turns). */
  static async open(url: string, options: PgDatabaseOptions = {}): Promise<PgDatabase> {
    const db = new PgDatabase(url, options)
    try {
      await db.#migrate()
    } catch (err) {
      await db.close()
      throw err
    }
    return db
  }

  /** Runs one statement: on the current transaction's connection inside `transaction`, on any pooled one outside. */
  async query(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    const ctx = this.#current()
    try {
      const r = await (ctx ? ctx.client : this.#pool).query(sql, params as unknown[])
      return r.rows as Row[]
    } catch (err) {
      throw pgFailure(err, this.#where) ?? err
    }
  }

  /** the rows' count of a statement (UPDATE, DELETE) */
  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const ctx = this.#current()
    try {
      return (await (ctx ? ctx.client : this.#pool).query(sql, params as unknown[])).rowCount ?? 0
    } catch (err) {
      throw pgFailure(err, this.#where) ?? err
    }
  }

  inTransaction(): boolean {
    return this.#current() !== undefined
  }

  /** the transaction this async context runs in, if it is still open */
  #current(): TxContext | undefined {
    const ctx = this.#tx.getStore()
    return ctx?.open ? ctx : undefined
  }

  /**
   * Runs fn in one transaction under the writer lock: every call inside commits with it or not at all (a
   * throw rolls back and is rethrown). Inside another transaction, fn joins it. `lockTimeoutMs` bounds the
   * wait for the writer lock (GH_STORE_LOCKED past it).
   */
  transaction<T>(fn: () => Promise<T>, lockTimeoutMs = this.#lockTimeoutMs): Promise<T> {
    return this.#transaction(fn, lockTimeoutMs, true)
  }

  /**
   * A transaction that does NOT take the writer lock: for rows outside the registry's read-check-write rules
   * that lock what they read themselves (`SELECT ... FOR UPDATE`: the AI usage ledger's leases), so they
   * neither wait for nor hold up the registry's writers. It appends no events. `lockTimeoutMs` bounds each
   * row-lock wait (GH_STORE_LOCKED past it). Inside another transaction, fn joins it.
   */
  transactionWithoutWriterLock<T>(fn: () => Promise<T>, lockTimeoutMs = this.#lockTimeoutMs): Promise<T> {
    return this.#transaction(fn, lockTimeoutMs, false)
  }

  async #transaction<T>(fn: () => Promise<T>, lockTimeoutMs: number, writerLock: boolean): Promise<T> {
    if (this.#current()) return fn()
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (err) {
      throw pgFailure(err, this.#where) ?? err
    }
    // a connection cut while checked out emits 'error' on the client: without a listener it would be an uncaught exception
    const onLost = (err: Error) => this.#onError(err)
    client.on('error', onLost)
    const release = (err?: Error) => {
      client.off('error', onLost)
      client.release(err)
    }
    const ctx: TxContext = { client, events: false, writerLock, open: true }
    let result: T
    this.#openTransactions++
    try {
      await client.query('BEGIN')
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}`)
      if (writerLock) await client.query('SELECT pg_advisory_xact_lock($1)', [WRITER_LOCK])
      result = await this.#tx.run(ctx, fn)
      if (ctx.events) await client.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, ''])
      ctx.open = false
      await client.query('COMMIT')
    } catch (err) {
      ctx.open = false
      await client.query('ROLLBACK').then(
        () => release(),
        (rollbackErr: Error) => release(rollbackErr), // a broken connection is closed, not returned to the pool
      )
      throw pgFailure(err, this.#where) ?? err
    } finally {
      // With no transaction open no flow needs #tx (every context it carried is closed): an enabled
      // AsyncLocalStorage makes Node 20 run async hooks for every promise and socket callback of the process,
      // the broker's publish path too; the next transaction's run() enables it again.
      if (--this.#openTransactions === 0) this.#tx.disable()
    }
    release()
    if (ctx.events) for (const l of [...this.#listeners]) l()
    return result
  }

  /** An event row was appended in the current transaction: NOTIFY at its commit, then tell this process's listeners. */
  eventAppended(): void {
    const ctx = this.#current()
    if (!ctx?.writerLock) throw new Error('eventAppended outside a transaction holding the writer lock')
    ctx.events = true
  }

  /** Called after each commit of this process that appended events (RegistryStore.onEventsCommitted). */
  onEventsCommitted(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * LISTEN on the events channel on a connection of its own (not the pool's): onNotify on every
   * notification, and after every (re)connect, since notifications sent while it was away are lost and
   * the feed must catch up by id. A lost connection is retried after minDelayMs, doubling to maxDelayMs,
   * until stop().
   */
  listen(onNotify: () => void, options: ListenOptions = {}): PgListener {
    const minDelay = options.minDelayMs ?? 100
    const maxDelay = options.maxDelayMs ?? 5000
    let delay = minDelay
    let client: pg.Client | undefined
    let live = false
    let stopped = false
    let timer: unknown
    const lost = (c: pg.Client, err?: Error) => {
      if (client !== c || stopped) return
      client = undefined
      live = false
      void c.end().catch(() => {})
      if (err) this.#onError(pgFailure(err, this.#where) ?? err)
      timer = this.#timers.setTimeout(connect, delay)
      delay = Math.min(delay * 2, maxDelay)
    }
    const connect = async () => {
      timer = undefined
      if (stopped) return
      const c = new pg.Client({ ...this.#config, application_name: `${this.#config.application_name}-listen` })
      client = c
      c.on('error', (err) => lost(c, err))
      c.on('end', () => lost(c))
      c.on('notification', (msg) => {
        if (msg.channel === EVENTS_CHANNEL) onNotify()
      })
      try {
        await c.connect()
        await c.query(`LISTEN ${EVENTS_CHANNEL}`)
      } catch (err) {
        lost(c, err as Error)
        return
      }
      if (stopped || client !== c) return
      live = true
      delay = minDelay
      onNotify()
    }
    const listener: PgListener = {
      connected: () => live,
      stop: async () => {
        stopped = true
        live = false
        this.#listening.delete(listener)
        if (timer !== undefined) this.#timers.clearTimeout(timer)
        const c = client
        client = undefined
        await c?.end().catch(() => {})
      },
    }
    this.#listening.add(listener)
    void connect()
    return listener
  }

  /** the schema version applied (the one row of schema_version) */
  async schemaVersion(): Promise<number> {
    const rows = await this.query('SELECT version FROM schema_version')
    return Number(rows[0]?.version ?? 0)
  }

  async #migrate(): Promise<void> {
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (err) {
      throw pgFailure(err, this.#where, true) ?? err
    }
    const onLost = (err: Error) => this.#onError(err)
    client.on('error', onLost)
    try {
      // a migration (and the wait for another node's) may take longer than a statement may: off for this session
      await client.query('SET statement_timeout = 0')
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATE_LOCK])
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)')
      const rows = (await client.query('SELECT version FROM schema_version')).rows as Row[]
      if (rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES (0)')
      const current = Number(rows[0]?.version ?? 0)
      const latest = pgMigrations[pgMigrations.length - 1]?.version ?? 0
      if (current > latest) throw new StoreSchemaTooNew(this.#where, current, latest)
      for (const m of pgMigrations.filter((m) => m.version > current)) {
        await client.query('BEGIN')
        try {
          await client.query(m.sql)
          if (m.version === 8) await backfillKeySha256(client)
          await client.query('UPDATE schema_version SET version = $1', [m.version])
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK')
          throw err
        }
      }
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATE_LOCK])
      await client.query('RESET statement_timeout')
      client.off('error', onLost)
      client.release()
    } catch (err) {
      client.off('error', onLost)
      client.release(err as Error) // a session lock dies with its connection
      throw pgFailure(err, this.#where, true) ?? err
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const l of [...this.#listening]) await l.stop()
    await this.#pool.end()
  }
}

/** As SQLite's migration 8 does: key_sha256 of the certificates stored before it, from their PEM. */
async function backfillKeySha256(client: pg.PoolClient): Promise<void> {
  const rows = (await client.query('SELECT serial, pem FROM certificates WHERE key_sha256 IS NULL')).rows as {
    serial: string
    pem: string
  }[]
  for (const row of rows) {
    let key: string | null
    try {
      key = publicKeySha256(row.pem)
    } catch {
      key = null // not a certificate we can read: it binds no key
    }
    if (key !== null) await client.query('UPDATE certificates SET key_sha256 = $1 WHERE serial = $2', [key, row.serial])
  }
}
