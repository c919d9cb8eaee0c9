import { StoreDiskFull, StoreLocked, StoreUnreachable, StoreWriteFailed } from '../../errors.ts'

const codeOf = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? '')

/** SQLSTATE unique_violation and foreign_key_violation: the stores map them to their own coded errors. */
export const isUniqueViolation = (err: unknown): boolean => codeOf(err) === '23505'
export const isForeignKeyViolation = (err: unknown): boolean => codeOf(err) === '23503'

const LOST = /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error|not queryable/i

/**
 * The one place a PostgreSQL or connection failure becomes a coded error, as storeFailure
 * (../store-failure.ts) is for SQLite: a connection refused, cut or timed out (SQLSTATE class 08, an
 * administrator's or a crash's shutdown 57P0x, Node's socket errors, node-postgres's own "Connection
 * terminated") is GH_STORE_UNREACHABLE; a full disk (53100) GH_STORE_DISK_FULL; a lock wait past its
 * timeout (55P03) GH_STORE_LOCKED; a read-only server or an I/O error GH_STORE_WRITE_FAILED. Undefined for
 * anything else (a constraint, a bug), which the caller rethrows as is. `where` names the server.
 */
export function pgFailure(err: unknown, where: string): Error | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && String(err.code).startsWith('GH_')) return undefined
  const code = codeOf(err)
  const message = err instanceof Error ? err.message : String(err)
  if (
    /^08/.test(code) ||
    /^57P0[123]$/.test(code) ||
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN)$/.test(code)
  )
    return new StoreUnreachable(`${where}: ${code} ${message}`, { cause: err })
  if (code === '' && LOST.test(message)) return new StoreUnreachable(`${where}: ${message}`, { cause: err })
  if (code === '53100') return new StoreDiskFull(`${where}: ${code}`, { cause: err })
  if (code === '55P03') return new StoreLocked(code, where, { cause: err })
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
