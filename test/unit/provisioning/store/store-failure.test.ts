import { describe, expect, it } from 'vitest'
import { storeFailure } from '../../../../provisioning/store/store-failure.ts'

const codeOf = (code: string) =>
  storeFailure(Object.assign(new Error(code), { code }), '/data/gatehouse.db') as (Error & { code: string }) | undefined

describe('storeFailure: SQLite and errno codes to the store codes (docs/conventions.md §35)', () => {
  it.each([
    ['SQLITE_FULL', 'GH_STORE_DISK_FULL'],
    ['ENOSPC', 'GH_STORE_DISK_FULL'],
    ['SQLITE_BUSY', 'GH_STORE_LOCKED'],
    ['SQLITE_CORRUPT', 'GH_STORE_CORRUPT'],
    ['SQLITE_CORRUPT_INDEX', 'GH_STORE_CORRUPT'],
    ['SQLITE_NOTADB', 'GH_STORE_CORRUPT'],
    // SQLite names the operation that failed: a read is not called a write
    ['SQLITE_IOERR_READ', 'GH_STORE_READ_FAILED'],
    ['SQLITE_IOERR_SHORT_READ', 'GH_STORE_READ_FAILED'],
    ['SQLITE_IOERR_WRITE', 'GH_STORE_WRITE_FAILED'],
    ['SQLITE_IOERR_FSYNC', 'GH_STORE_WRITE_FAILED'],
    ['SQLITE_READONLY', 'GH_STORE_WRITE_FAILED'],
  ])('%s is %s', (sqlite, code) => {
    const err = codeOf(sqlite)
    expect(err?.code).toBe(code)
    expect(err?.message).toContain(sqlite)
  })

  it('leaves a constraint or an uncoded error to the caller', () => {
    expect(codeOf('SQLITE_CONSTRAINT_UNIQUE')).toBeUndefined()
    expect(storeFailure(new TypeError('a bug'))).toBeUndefined()
  })
})
