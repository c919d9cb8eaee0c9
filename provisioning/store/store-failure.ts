import { StoreCorrupt, StoreDiskFull, StoreLocked, StoreReadFailed, StoreWriteFailed } from '../errors.ts'

const codeOf = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? '')

/**
 * The one place a low-level storage failure (SQLite's result codes, Node's errno codes) becomes a coded
 * error: a full disk, a lock held past the busy timeout, a file that is not a database (or a damaged page of
 * one, met by a read as well as a write), a failed read (SQLite names it: SQLITE_IOERR_READ, _SHORT_READ), any
 * other I/O failure. Returns undefined for anything else (a constraint, a bug), which the caller rethrows as is.
 * `path` names the database for the messages that need it. Writes reach it through storeWrite, and every call
 * of a SQLite store, a read too, through its TransactionGate (sqlite-registry-store.ts).
 */
export function storeFailure(err: unknown, path = 'the registry'): Error | undefined {
  const code = codeOf(err)
  if (/^SQLITE_FULL/.test(code) || code === 'ENOSPC' || code === 'EDQUOT') return new StoreDiskFull(code, { cause: err })
  if (/^SQLITE_(BUSY|LOCKED)/.test(code))
    return new StoreLocked(`process for longer than the busy timeout (${code})`, `find the process holding ${path} (fuser or lsof)`, {
      cause: err,
    })
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return new StoreCorrupt(path, code, { cause: err })
  if (/^SQLITE_IOERR_(READ|SHORT_READ)$/.test(code)) return new StoreReadFailed(code, { cause: err })
  if (/^SQLITE_(IOERR|READONLY|CANTOPEN)/.test(code) || code === 'EROFS' || code === 'EIO')
    return new StoreWriteFailed(code, { cause: err })
  return undefined
}

/** SQLite's unique or primary-key constraint (not a foreign key or a check): a store maps it to its own "exists" error. */
export const isSqliteDuplicate = (err: unknown): boolean => /^SQLITE_CONSTRAINT_(PRIMARYKEY|UNIQUE)$/.test(codeOf(err))
/** SQLite's foreign-key constraint: a row names a parent that is not there. */
export const isSqliteForeignKey = (err: unknown): boolean => codeOf(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY'

/** Runs a write; a storage failure becomes its coded error (nothing was changed), anything else is rethrown. */
export function storeWrite<T>(fn: () => T, path?: string): T {
  try {
    return fn()
  } catch (err) {
    throw storeFailure(err, path) ?? err
  }
}
