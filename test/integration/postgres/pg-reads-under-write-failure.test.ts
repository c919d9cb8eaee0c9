import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
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

  /** Every write to these tables fails with disk_full (53100) until the test ends. */
  async function diskFullOn(...tables: string[]): Promise<void> {
    await store.db.query(
      `CREATE OR REPLACE FUNCTION gh_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$`,
    )
    for (const t of tables)
      await store.db.query(
        `CREATE TRIGGER gh_test_disk_full BEFORE INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION gh_test_disk_full()`,
      )
    onTestFinished(async () => {
      for (const t of tables) await store.db.query(`DROP TRIGGER gh_test_disk_full ON ${t}`)
    })
  }

  it('keeps a dashboard session signed in whose use cannot be recorded, and refuses an expired one it cannot remove, with warnings', async () => {
    const clock = fixedClock('2026-03-01T00:00:00Z')
    const { log, records } = createRecordingLogger('info')
    const sessions = createSessionStore({ clock, random: cryptoRandom, store: store.dashboardSessions, log }, { idleMs: 30 * 60_000 })
    const { id, session } = await sessions.create({ id: 'key-1', name: 'ops' })
    await diskFullOn('dashboard_sessions')
    await expect(sessions.create({ id: 'key-2', name: 'more' })).rejects.toMatchObject({ code: 'GH_STORE_DISK_FULL' })
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
    await diskFullOn('meta', 'devices')
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
    await diskFullOn('device_settings', 'events', 'audit_log')
    expect(await settings.getDevice('settings-1')).toMatchObject({ deviceId: 'settings-1', version: 1, desired: {}, reported: null })
  })
})
