import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli, spawnCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
/** every file of the data directory with its hash: what "nothing renamed, deleted or overwritten" compares */
const snapshot = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => [join(e.parentPath, e.name).slice(dir.length), sha(join(e.parentPath, e.name))]),
  )

async function initialised(): Promise<string> {
  const dataDir = join(tempDir(), 'data')
  expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
  expect((await runCli(['device', 'create', 'pump-1', '--data-dir', dataDir, '--out', join(dataDir, '..', 'out')])).code).toBe(0)
  return dataDir
}

describe('a damaged or locked registry', () => {
  it('refuses a change with GH_STORE_LOCKED while another process holds the lock past the busy timeout, and stores nothing', async () => {
    const dataDir = await initialised()
    const holder = new Database(join(dataDir, 'gatehouse.db'))
    onTestFinished(() => void holder.close())
    holder.exec('BEGIN EXCLUSIVE') // this process holds the lock; the CLI below is another process
    const res = await spawnCli(['device', 'create', 'pump-2', '--data-dir', dataDir, '--out', join(dataDir, '..', 'out2')])
    expect(res.code, res.stderr).toBe(1)
    expect(res.stderr).toMatch(/error GH_STORE_LOCKED: the registry is locked by another process .*SQLITE_BUSY.*fuser or lsof/)
    holder.exec('ROLLBACK')
    const list = await runCli(['device', 'list', '--json', '--data-dir', dataDir])
    expect(list.stdout).not.toContain('pump-2')
  })

  it.each([
    ['not a database at all', (db: string) => writeFileSync(db, Buffer.alloc(64 * 1024, 0x5a))],
    [
      'a damaged schema page',
      (db: string) => {
        const bytes = readFileSync(db)
        bytes.fill(0xa5, 100, 4096) // page 1 after the header: sqlite_master
        writeFileSync(db, bytes)
      },
    ],
  ])('refuses to start with GH_STORE_CORRUPT on %s, twice in a row, and renames, deletes or overwrites nothing', async (_what, damage) => {
    const dataDir = await initialised()
    const db = join(dataDir, 'gatehouse.db')
    // fold the WAL into the file so the damage is what SQLite reads
    const checkpoint = new Database(db)
    checkpoint.pragma('wal_checkpoint(TRUNCATE)')
    checkpoint.close()
    damage(db)
    const before = snapshot(dataDir)
    // a supervisor restarting it: each start refuses the same way (the real binary, then in-process: faster)
    for (const start of [spawnCli, (args: string[]) => runCli(args)]) {
      const res = await start(['start', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'])
      expect(res.code, res.stderr).toBe(1)
      expect(res.stderr).toMatch(
        /error GH_STORE_CORRUPT: the registry .*gatehouse\.db is not a readable SQLite database .*left it untouched; restore it from a backup/,
      )
    }
    const after = snapshot(dataDir)
    for (const [file, hash] of Object.entries(before)) expect(after[file], file).toBe(hash)
    expect(Object.keys(after).filter((f) => !(f in before) && !/gatehouse\.db-(wal|shm)$/.test(f))).toEqual([])
    const init = await runCli(['init', '--data-dir', dataDir])
    expect(init.stderr).toContain('GH_STORE_CORRUPT')
    expect(sha(db)).toBe(before['/gatehouse.db'])
  })
})
