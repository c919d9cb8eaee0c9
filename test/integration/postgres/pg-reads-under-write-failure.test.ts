import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { cryptoRandom, issuerKeyId } from '../../../certs/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createSessionStore } from '../../../provisioning/dashboard/sessions.ts'
import { createSettingsCipher } from '../../../provisioning/settings/secrets.ts'
import { createSettingsService } from '../../../provisioning/settings/settings-service.ts'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

// Issue 17 on PostgreSQL: a read never fails on a write the store refuses, as test/integration/faults/full-disk.test.ts
// shows on SQLite. The server refuses the writes as a full disk does (SQLSTATE 53100, disk_full): a trigger on
// the tables a read would write raises it before any INSERT, UPDATE or DELETE, until the test ends.
const available = postgresAvailable()

describe.skipIf(!available)('reads on PostgreSQL while its disk refuses writes', () => {
  let server: PostgresServer
  let store: PgRegistryStore

  beforeAll(async () => {
    server = await startPostgres()
    store = await PgRegistryStore.open(await server.createDatabase('reads'))
  })
  afterAll(async () => {
    await store?.close()
    await server?.stop()
  })

  /** Every write to these tables of `db` (the suite's store's database unless given) fails with disk_full (53100) until the test ends. */
  async function diskFullOn(tables: string[], db: { query(sql: string): Promise<unknown> } = store.db): Promise<void> {
    await db.query(
      `CREATE OR REPLACE FUNCTION gh_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$`,
    )
    for (const t of tables)
      await db.query(
        `CREATE TRIGGER gh_test_disk_full BEFORE INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION gh_test_disk_full()`,
      )
    onTestFinished(async () => {
      for (const t of tables) await db.query(`DROP TRIGGER gh_test_disk_full ON ${t}`)
    })
  }

  it('keeps a dashboard session signed in whose use cannot be recorded, and refuses an expired one it cannot remove, with warnings', async () => {
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const { log, records } = createRecordingLogger('info')
    const sessions = createSessionStore({ clock, random: cryptoRandom, store: store.dashboardSessions, log }, { idleMs: 30 * 60_000 })
    const { id, session } = await sessions.create({ id: 'key-1', name: 'ops' })
    await diskFullOn(['dashboard_sessions'])
    await expect(sessions.create({ id: 'key-2', name: 'more' })).rejects.toMatchObject({
      code: 'GH_STORE_DISK_FULL',
      message: expect.stringContaining("the disk holding the data directory is full (the PostgreSQL server's, postgres://127.0.0.1:"),
    })
    const warned = (msg: string) => records.filter((r) => r.msg === msg && r.code === 'GH_STORE_DISK_FULL').length

    clock.advance('2m') // its use is due to be written (every minute at most), and that write fails
    expect(await sessions.get(id)).toMatchObject({ keyId: 'key-1', keyName: 'ops' })
    expect(warned('dashboard session use not recorded')).toBe(1)
    clock.advance('31m') // idle past its bound since the last use recorded (the sign-in): expired, its removal fails
    expect(await sessions.get(id)).toBeUndefined()
    expect(await sessions.isLive(session)).toBe(false)
    expect(warned('expired dashboard session not removed')).toBe(2)
    expect(await sessions.size()).toBe(1) // still stored: a lookup once writes are back removes it
  })

  it('serves a signed-in dashboard request of a Gatehouse on PostgreSQL whose session writes fail, and answers 401 (not a storage error) for a session expired or of an expired key', async () => {
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const { log, records } = createRecordingLogger('info')
    const databaseUrl = await server.createDatabase('node')
    const config = loadConfig({ dataDir: join(tempDir(), 'data'), mqttPort: 0, httpPort: 0, aiEnabled: false, databaseUrl }, {})
    const node = await startGatehouse(config, { log, clock })
    onTestFinished(() => node.close())
    const http = (path: string, init: RequestInit = {}) => fetch(`${node.http.url}${path}`, { redirect: 'manual', ...init })
    /** a dashboard key of this name (expiring after expiresInMs), signed in: its session cookie */
    const signedIn = async (name: string, expiresInMs?: number) => {
      const { token } = await node.control.apiKeys.create(
        { name, scopes: ['dashboard'], ...(expiresInMs && { expiresInMs }) },
        'operator:test',
      )
      const res = await http('/dashboard/sign-in', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: token }),
      })
      expect(res.status).toBe(200)
      return res.headers.get('set-cookie')!.split(';')[0]!
    }
    const cookie = await signedIn('ops-dash')
    const shortLived = await signedIn('ops-5min', 5 * 60_000)
    const admin = new pg.Client({ connectionString: databaseUrl })
    await admin.connect()
    onTestFinished(() => admin.end())
    await diskFullOn(['dashboard_sessions'], admin)
    const warned = (msg: string) => records.filter((r) => r.msg === msg && r.code === 'GH_STORE_DISK_FULL').length
    const session = (cookie: string) => http('/dashboard/api/session', { headers: { cookie } })

    clock.advance('2m') // its use is due to be written, and that write fails
    const served = await session(cookie)
    expect(served.status).toBe(200)
    expect(await served.json()).toMatchObject({ name: 'ops-dash' })
    expect(warned('dashboard session use not recorded')).toBe(1)
    clock.advance('4m') // the 5-minute key has expired: its session is refused, and its removal fails
    const keyExpired = await session(shortLived)
    expect(keyExpired.status).toBe(401)
    expect(await keyExpired.json()).toMatchObject({ code: 'GH_DASHBOARD_SESSION' })
    expect(warned('refused dashboard session not removed')).toBe(1)
    clock.advance('31m') // idle past 30 min since its last recorded use: signed out, not a storage error
    const expired = await session(cookie)
    expect(expired.status).toBe(401)
    expect(await expired.json()).toMatchObject({ code: 'GH_DASHBOARD_SESSION' })
    expect((await http('/dashboard', { headers: { cookie } })).headers.get('location')).toBe('/dashboard/sign-in')
    expect(warned('expired dashboard session not removed')).toBe(2)
  }, 60_000)

  it('serves the stored CRL, still valid and complete, when its reissue cannot be stored, and never an expired one', async () => {
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const ca = await makeTestCa()
    const { log, records } = createRecordingLogger('info')
    const authority = createDeviceAuthority({ store, ca, clock, random: cryptoRandom, log }, { validDays: 30 })
    await authority.createDevice({ id: 'crl-1' }, 'op')
    await authority.revokeDevice('crl-1', 'keyCompromise', 'op')
    const keyId = await issuerKeyId(ca.issuing.certificate)
    const issued = (await authority.crlByKeyId(keyId))!
    expect(issued.entries).toBe(1)
    await diskFullOn(['meta', 'devices'])
    await expect(authority.createDevice({ id: 'crl-2' }, 'op')).rejects.toMatchObject({ code: 'GH_STORE_DISK_FULL' })

    clock.advance('4d') // past half of its 7 days: a fetch reissues it, and that write fails
    expect(await authority.crlByKeyId(keyId)).toMatchObject({ crlNumber: issued.crlNumber, entries: 1, pem: issued.pem })
    expect((await authority.currentCrl()).crlNumber).toBe(issued.crlNumber)
    expect(records.some((r) => r.msg === 'CRL not reissued: the stored one, still valid and complete, is served')).toBe(true)
    clock.advance('4d') // past its nextUpdate: an expired CRL is never served
    await expect(authority.crlByKeyId(keyId)).rejects.toMatchObject({ code: 'GH_STORE_DISK_FULL' })
  })

  it("answers a never-delivered device's settings without writing its version row", async () => {
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const { log } = createRecordingLogger('info')
    const ca = await makeTestCa()
    const authority = createDeviceAuthority({ store, ca, clock, random: cryptoRandom, log })
    await authority.createDevice({ id: 'settings-1' }, 'op')
    const cipher = createSettingsCipher(new Uint8Array(32).fill(7), cryptoRandom)
    const settings = createSettingsService({ store, settings: store.settings, cipher, clock, log })
    await diskFullOn(['device_settings', 'events', 'audit_log'])
    expect(await settings.getDevice('settings-1')).toMatchObject({ deviceId: 'settings-1', version: 1, desired: {}, reported: null })
  })
})
