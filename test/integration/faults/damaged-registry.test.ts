import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { attemptConnect, readBundleCredentials } from '../../helpers/mqtt-clients.ts'
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

/** Overwrites the pages of `table` (its b-tree's root, a leaf for a few rows) with garbage; the schema stays readable. */
function damageTable(db: string, table: string): void {
  const probe = new Database(db)
  probe.pragma('wal_checkpoint(TRUNCATE)') // fold the WAL into the file so the damage is what SQLite reads
  const pageSize = Number(probe.pragma('page_size', { simple: true }))
  const root = Number((probe.prepare('SELECT rootpage FROM sqlite_master WHERE name = ?').get(table) as { rootpage: number }).rootpage)
  probe.close()
  const bytes = readFileSync(db)
  bytes.fill(0xa5, (root - 1) * pageSize, root * pageSize)
  writeFileSync(db, bytes)
}

describe('a registry with a damaged data page (the schema readable)', () => {
  it('answers reads with GH_STORE_CORRUPT through the API and the CLI, refuses a device "server unavailable", and keeps serving', async () => {
    const dataDir = await initialised()
    const creds = readBundleCredentials(join(dataDir, '..', 'out'), 'pump-1')
    damageTable(join(dataDir, 'gatehouse.db'), 'devices')
    const before = sha(join(dataDir, 'gatehouse.db'))

    // the CLI: a read is refused with the store's code (exit 1), not an internal error
    for (const args of [
      ['device', 'show', 'pump-1'],
      ['device', 'list'],
    ]) {
      const res = await runCli([...args, '--data-dir', dataDir])
      expect(res.code, res.stderr).toBe(1)
      expect(res.stderr).toMatch(/^error GH_STORE_CORRUPT: the registry .*gatehouse\.db is not a readable SQLite database \(SQLITE_CORRUPT/)
      const json = await runCli([...args, '--json', '--data-dir', dataDir])
      expect(JSON.parse(json.stderr)).toMatchObject({ code: 'GH_STORE_CORRUPT' })
    }

    const { log, records } = createRecordingLogger('info')
    const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false }, {}), { log })
    onTestFinished(() => gatehouse.close())
    const { token } = await gatehouse.control.apiKeys.create({ name: 'ops', scopes: ['devices:read', 'settings:read'] }, 'operator:test')
    for (const path of ['/v1/devices/pump-1', '/v1/devices']) {
      const res = await fetch(`${gatehouse.http.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
      expect(res.status, path).toBe(500)
      expect(((await res.json()) as { code: string }).code, path).toBe('GH_STORE_CORRUPT')
    }

    // the broker: a device whose lookup hits the damage is told to come back later (3), never crashes, and says why
    for (let i = 0; i < 3; i++) expect((await attemptConnect(gatehouse.mqtt.port, creds)).connack).toBe(3)
    const failed = records.filter((r) => r.msg === 'device lookup failed')
    expect(failed).toHaveLength(1) // once per interval, not once per CONNECT
    expect(failed[0]).toMatchObject({ code: 'GH_BROKER_DIRECTORY_UNAVAILABLE', cause: 'GH_STORE_CORRUPT', deviceId: 'pump-1' })
    // and keeps serving what the damage does not touch
    const defaults = await fetch(`${gatehouse.http.url}/v1/settings/defaults`, { headers: { authorization: `Bearer ${token}` } })
    expect(defaults.status).toBe(200)
    expect(sha(join(dataDir, 'gatehouse.db'))).toBe(before) // the evidence stays as it was
  })
})
