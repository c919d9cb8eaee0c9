import {
  StoreAuthFailed,
  StoreConnectionRefused,
  StoreDatabaseMissing,
  StoreDiskFull,
  StoreLocked,
  StoreTimeout,
  StoreUnreachable,
  StoreWriteFailed,
} from '../../errors.ts'

const codeOf = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? '')

/** SQLSTATE unique_violation and foreign_key_violation: the stores map them to their own coded errors. */
export const isUniqueViolation = (err: unknown): boolean => codeOf(err) === '23505'
export const isForeignKeyViolation = (err: unknown): boolean => codeOf(err) === '23503'

const LOST = /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error|not queryable/i

/**
 * The one place a PostgreSQL or connection failure becomes a coded error, as storeFailure
 * (../store-failure.ts) is for SQLite: a login refused (SQLSTATE class 28: a wrong password, no pg_hba.conf
 * line, an unknown role) is GH_STORE_AUTH_FAILED and a database that is not there (3D000)
 * GH_STORE_DATABASE_MISSING, whenever a connection is opened; a connection refused while `opening` the
 * database (nothing listens there: the URL or the server is wrong) GH_STORE_CONNECTION_REFUSED; a connection
 * refused later, cut or timed out (SQLSTATE class 08, an administrator's or a crash's shutdown 57P0x, Node's
 * socket errors, node-postgres's own "Connection terminated") GH_STORE_UNREACHABLE; a full disk (53100)
 * GH_STORE_DISK_FULL; a lock wait past its timeout (55P03) GH_STORE_LOCKED; a statement cancelled (57014: past
 * statement_timeout) GH_STORE_TIMEOUT; a read-only server or an I/O
 * error GH_STORE_WRITE_FAILED. Undefined for anything else (a constraint, a bug), which the caller rethrows
 * as is. `where` names the server (describeUrl: never the password).
 */
export function pgFailure(err: unknown, where: string, opening = false): Error | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && String(err.code).startsWith('GH_')) return undefined
  const code = codeOf(err)
  const message = err instanceof Error ? err.message : String(err)
  if (/^28/.test(code)) return new StoreAuthFailed(where, `${code} ${message}`, { cause: err })
  if (code === '3D000') return new StoreDatabaseMissing(where, `${code} ${message}`, { cause: err })
  // node-postgres's own words when the server asks for a password and the URL (and ~/.pgpass) gives none
  if (code === '' && /^SASL: .*password must be a string/.test(message))
    return new StoreAuthFailed(where, `the server asks for a password and the URL gives none: ${message}`, { cause: err })
  if (opening && code === 'ECONNREFUSED') return new StoreConnectionRefused(where, code, { cause: err })
  if (
    /^08/.test(code) ||
    /^57P0[123]$/.test(code) ||
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN)$/.test(code)
  )
    return new StoreUnreachable(`${where}: ${code} ${message}`, { cause: err })
  if (code === '' && LOST.test(message)) return new StoreUnreachable(`${where}: ${message}`, { cause: err })
  // the disk is the server's, not Gatehouse's data directory: the message says which
  if (code === '53100') return new StoreDiskFull(`the PostgreSQL server's, ${where}: ${code}`, { cause: err })
  if (code === '55P03')
    return new StoreLocked(
      `transaction for longer than the lock timeout (${code} on ${where})`,
      "find the session holding it in pg_stat_activity (an 'idle in transaction' or long-running one; pg_blocking_pids of the waiters names it), let it finish or end it (pg_terminate_backend)",
      { cause: err },
    )
  // statement_timeout (PgDatabaseOptions.statementTimeoutMs), or a cancel by an administrator (pg_cancel_backend)
  if (code === '57014') return new StoreTimeout(`${where}: ${code} ${message}`, { cause: err })
  if (code === '25006' || /^58/.test(code)) return new StoreWriteFailed(`${where}: ${code} ${message}`, { cause: err })
  return undefined
}

/** host:port/database of a connection URL, without the user or password (for messages and logs). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url)
    return `postgres://${u.host}${u.pathname}`
  } catch {
    return 'the PostgreSQL registry'
  }
}
