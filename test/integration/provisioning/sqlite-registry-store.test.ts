import { execFileSync } from 'node:child_process'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import pino from 'pino'
import { certificateToPem, publicKeySha256, systemClock } from '../../../certs/index.ts'
import { createChangeFeed } from '../../../provisioning/index.ts'
import { COUNT_EXPIRING_SQL, SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { certificate, device, registryStoreContract } from '../../contract/registry-store.contract.ts'
import { migrations } from '../../../provisioning/store/migrations/index.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

function open(path: string): SqliteRegistryStore {
  const store = new SqliteRegistryStore(path)
  onTestFinished(() => store.close())
  return store
}

registryStoreContract('SqliteRegistryStore', () => open(join(tempDir(), 'gatehouse.db')))

describe('SqliteRegistryStore on disk', () => {
  it('holds a call of another async flow, on any store of the database, until the open transaction ends, and never shows it a rolled-back write', async () => {
    const store = open(join(tempDir(), 'gatehouse.db'))
    const layer = (revision: number) => ({
      scope: 'fleet' as const,
      document: { rate: revision },
      revision,
      updatedAt: new Date(0),
      updatedBy: 'op',
    })
    let release = () => {}
    const held = new Promise<void>((r) => (release = r))
    const seen: (number | undefined)[] = []
    const failing = store.transaction(async () => {
      await store.settings.putLayer(layer(1))
      await held
      throw new Error('rolled back')
    })
    const outside = store.settings.getLayer('fleet').then((l) => seen.push(l?.revision))
    const write = store.limits.putTier({ key: 'premium', limits: {}, updatedAt: new Date(0), updatedBy: 'op' })
    await Promise.resolve()
    expect(seen).toEqual([]) // still held: the transaction is open
    release()
    await expect(failing).rejects.toThrow('rolled back')
    await outside
    await write
    expect(seen).toEqual([undefined])
    expect(await store.limits.getTier('premium')).toMatchObject({ key: 'premium' }) // not rolled back with the other flow's transaction
    await store.insertDevice(device('pump-1'))
    await store.transaction(async () => {
      await store.settings.putLayer(layer(2))
      await store.transaction(async () => store.limits.putDevice({ key: 'pump-1', limits: {}, updatedAt: new Date(0), updatedBy: 'op' }))
    })
    expect((await store.settings.getLayer('fleet'))?.revision).toBe(2)
  })

  it('runs in WAL mode and a second process reads what the first committed', async () => {
    const path = join(tempDir(), 'gatehouse.db')
    const store = open(path)
    await store.insertDevice(device('pump-1', { group: 'pumps' }))
    await store.insertCertificate(certificate('0a', 'pump-1'))
    const script = `
      const D = require('better-sqlite3'); const db = new D(process.argv[1], { readonly: true });
      console.log(JSON.stringify({ mode: db.pragma('journal_mode', { simple: true }),
        device: db.prepare('SELECT id, group_name FROM devices').get(),
        serial: db.prepare('SELECT serial FROM certificates').get().serial }))`
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script, path], { encoding: 'utf8' }))
    expect(out).toEqual({ mode: 'wal', device: { id: 'pump-1', group_name: 'pumps' }, serial: '0a' })
  })

  it('moves its data version when another connection commits, not on its own commits, and a change feed catches up on exactly that', async () => {
    const path = join(tempDir(), 'gatehouse.db')
    const broker = open(path)
    const cli = open(path)
    const feed = await createChangeFeed({ store: broker, clock: systemClock, log: pino({ level: 'silent' }) }, { intervalMs: 5000 }) // never started
    const seen: string[] = []
    feed.onEvent((e) => seen.push(e.type))
    const v0 = await broker.dataVersion()
    await broker.appendAudit({ at: new Date(), actor: 'broker', action: 'connect.refused', subject: 'x', details: {} })
    expect(await broker.dataVersion()).toBe(v0)
    expect(await feed.catchUp()).toBe(0)
    await cli.transaction(async () => await cli.appendEvent('device.revoked', { deviceId: 'a' }, new Date()))
    expect(await broker.dataVersion()).not.toBe(v0)
    expect(await feed.catchUp()).toBe(1)
    expect(seen).toEqual(['device.revoked'])
    expect(await feed.catchUp()).toBe(0) // nothing new: one PRAGMA, no read of the events table
    await broker.transaction(async () => await broker.appendEvent('device.enabled', { deviceId: 'a' }, new Date())) // this process's own commit
    expect(await feed.catchUp()).toBe(1)
    expect(seen).toEqual(['device.revoked', 'device.enabled'])
  })

  it('keeps its data and schema version across reopen and migrates only once', async () => {
    const path = join(tempDir(), 'gatehouse.db')
    const first = new SqliteRegistryStore(path)
    await first.insertDevice(device('a'))
    await first.appendEvent('device.created', { deviceId: 'a' }, new Date())
    first.close()
    const second = open(path)
    expect((await second.getDevice('a'))?.id).toBe('a')
    expect(await second.lastEventSeq()).toBe(1)
  })

  it('counts expiring certificates with a range over an index on not_after (every /metrics scrape asks), not a table scan', () => {
    const path = join(tempDir(), 'gatehouse.db')
    open(path)
    const db = new Database(path, { readonly: true })
    onTestFinished(() => void db.close())
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${COUNT_EXPIRING_SQL}`).all('2026-01-01', '2026-02-01') as { detail: string }[]).map(
      (r) => r.detail,
    )
    expect(plan).toContainEqual(
      expect.stringMatching(/^SEARCH c USING INDEX certificates_active_not_after \(not_after>\? AND not_after<\?\)$/),
    )
    expect(plan.some((d) => d.startsWith('SCAN'))).toBe(false)
  })

  it('fills in the key hash of certificates issued before migration 8 when it applies it', async () => {
    const path = join(tempDir(), 'gatehouse.db')
    const old = new Database(path)
    for (const m of migrations.filter((m) => m.version <= 7)) old.exec(m.sql)
    old.pragma('user_version = 7')
    const pem = certificateToPem((await makeTestCa()).issuing.certificate) // any certificate: only its key is read
    const t = '2026-01-01T00:00:00.000Z'
    old.prepare("INSERT INTO devices (id, tier, status, created_at, updated_at) VALUES ('pump-1', 'standard', 'active', ?, ?)").run(t, t)
    old
      .prepare(
        "INSERT INTO certificates (serial, device_id, fingerprint, not_before, not_after, status, pem, created_at) VALUES ('0a', 'pump-1', 'fp', ?, ?, 'active', ?, ?)",
      )
      .run(t, t, pem, t)
    old.close()
    const store = open(path)
    expect((await store.certificatesWithKey(publicKeySha256(pem))).map((c) => c.serial)).toEqual(['0a'])
  })

  it('refuses to open a registry written by a newer Gatehouse', () => {
    const path = join(tempDir(), 'gatehouse.db')
    const store = new SqliteRegistryStore(path)
    store.close()
    execFileSync(process.execPath, ['-e', `new (require('better-sqlite3'))(process.argv[1]).pragma('user_version = 99')`, path])
    expect(() => new SqliteRegistryStore(path)).toThrow(expect.objectContaining({ code: 'GH_STORE_SCHEMA_TOO_NEW' }))
  })

  it('fails a write probe within its own short timeout while another connection holds the write lock, and passes once it is released', async () => {
    const path = join(tempDir(), 'gatehouse.db')
    const store = open(path)
    const other = new Database(path)
    onTestFinished(() => void other.close())
    other.exec('BEGIN EXCLUSIVE')
    const started = performance.now()
    await expect(store.probeWrite(new Date(), 50)).rejects.toMatchObject({ code: 'GH_STORE_LOCKED' })
    expect(performance.now() - started).toBeLessThan(1000) // not the store's 5 s busy timeout
    other.exec('ROLLBACK')
    await store.probeWrite(new Date('2026-02-03T04:05:06Z'), 50)
    expect(await store.getMeta('health.probedAt')).toBe('2026-02-03T04:05:06.000Z')
  })
})
