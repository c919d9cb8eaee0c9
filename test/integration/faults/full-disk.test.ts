import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { cryptoRandom, issuerKeyId } from '../../../certs/index.ts'
import { API_SCOPES } from '../../../provisioning/api-keys/scopes.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createSessionStore } from '../../../provisioning/dashboard/sessions.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { mountable, smallDisk } from '../../helpers/small-disk.ts'
import { waitFor } from '../../helpers/wait.ts'

/** Fills the file system holding dir until ENOSPC (bounded by its size); returns the filler file. */
function fill(dir: string): string {
  const path = join(dir, 'filler')
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  try {
    for (let i = 0; i < 16_384; i++) writeSync(fd, chunk)
    throw new Error('the disk never filled up')
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
  // the last few KiB: a write of one small chunk less fits in what a 64 KiB write left over
  const tail = openSync(join(dir, 'filler-tail'), 'w')
  try {
    for (let i = 0; i < 64; i++) writeSync(tail, Buffer.alloc(1024, 1))
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOSPC') throw err
  } finally {
    closeSync(tail)
  }
  return path
}

describe('a full disk under the data directory', () => {
  it.skipIf(!mountable)(
    'refuses provisioning and settings changes with GH_STORE_DISK_FULL, keeps serving, counts failed audits, and recovers once space is freed',
    async () => {
      const disk = smallDisk('8m')
      if (disk === undefined) return console.warn('skipped: mount -t tmpfs was refused (run as root, as CI does)')
      const dataDir = join(disk, 'data')
      mkdirSync(dataDir, { mode: 0o700 })
      const { log, records } = createRecordingLogger('info')
      const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false }, {}), { log })
      onTestFinished(() => gatehouse.close())
      const { authority } = gatehouse.control
      const issued = await authority.createDevice({ id: 'pump-1' }, 'operator:test')
      const creds = {
        deviceId: 'pump-1',
        cert: issued.certificatePem,
        key: issued.privateKey!.pem,
        ca: issued.chainPem,
        serial: issued.serial,
      }
      const device = await connectDevice(gatehouse.mqtt.port, creds)
      await authority.createDevice({ id: 'quiet-1' }, 'operator:test') // never connects, never has settings read or written
      const { token } = await gatehouse.control.apiKeys.create({ name: 'ops', scopes: [...API_SCOPES] }, 'operator:test')

      const filler = fill(disk)
      // The WAL may still have room for a write or two: provision until the disk refuses (bounded).
      let refused: (Error & { code?: string; statusCode?: number }) | undefined
      const attempted: string[] = []
      for (let i = 0; i < 50 && refused === undefined; i++) {
        attempted.push(`full-${i}`)
        await authority.createDevice({ id: `full-${i}` }, 'operator:test').catch((err: Error) => (refused = err))
      }
      expect(refused?.code, String(refused)).toBe('GH_STORE_DISK_FULL')
      expect(refused?.message).toMatch(/disk .* is full.*nothing was changed; free space/)
      expect(await gatehouse.control.store.getDevice(attempted.at(-1)!)).toBeUndefined()

      const patch = await fetch(`${gatehouse.http.url}/v1/devices/pump-1/settings`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ interval: 15 }),
      })
      expect(patch.status).toBe(507)
      expect(((await patch.json()) as { code: string }).code).toBe('GH_STORE_DISK_FULL')

      // reads write nothing: the settings of a device that never had any are shown (API, CLI) while the disk is full
      const get = await fetch(`${gatehouse.http.url}/v1/devices/quiet-1/settings`, { headers: { authorization: `Bearer ${token}` } })
      expect(get.status, await get.clone().text()).toBe(200)
      expect(get.headers.get('etag')).toBe('"1"')
      expect(((await get.json()) as { version: number; desired: object }).desired).toEqual({})
      const cliGet = await runCli(['settings', 'get', '--device', 'quiet-1', '--json', '--data-dir', dataDir])
      expect(cliGet.code, cliGet.stderr).toBe(0)
      expect(JSON.parse(cliGet.stdout)).toMatchObject({ deviceId: 'quiet-1', version: 1, desired: {}, overrides: {} })
      expect(await gatehouse.control.settings.getDevice('quiet-1')).toMatchObject({ version: 1 })
      // every other read answers too (the audit of hidden writes, issue 17): the API's GETs and the CLI's reads
      for (const path of [
        '/v1/devices',
        '/v1/devices/pump-1',
        '/v1/devices/quiet-1/limits',
        '/v1/devices/quiet-1/insights',
        '/v1/devices/quiet-1/usage',
        '/v1/settings/defaults',
        '/v1/groups/pumps/settings',
        '/v1/groups/pumps/settings/schema',
        '/v1/tiers',
        '/v1/routes',
        '/v1/apikeys',
        '/v1/apps',
        '/v1/checks',
        '/metrics',
      ]) {
        const res = await fetch(`${gatehouse.http.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
        expect(res.status, `GET ${path}: ${await res.clone().text()}`).toBeLessThan(300)
      }
      for (const args of [
        ['device', 'list'],
        ['device', 'show', 'quiet-1'],
        ['device', 'limits', 'show', 'quiet-1'],
        ['settings', 'get', '--defaults'],
        ['audit'],
        ['apikey', 'list'],
        ['tier', 'list'],
        ['route', 'list'],
        ['app', 'list'],
        ['claim', 'list'],
        ['ca', 'show'],
        ['crl'],
        ['check'],
      ]) {
        const res = await runCli([...args, '--json', '--data-dir', dataDir])
        expect(res.stderr, args.join(' ')).not.toMatch(/GH_STORE_|internal/)
        if (args[0] !== 'check') expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0) // check exits 1 on its findings
      }

      // the broker keeps serving the connected device, and an audit it cannot write is counted and logged
      await device.publishAsync('devices/pump-1/telemetry', JSON.stringify({ t: 1 }), { qos: 1 })
      const failuresBefore = gatehouse.control.store.auditWriteFailures()
      device.publish('devices/pump-2/telemetry', 'not mine') // refused and audited (publish.refused): that write fails
      await waitFor(() => gatehouse.control.store.auditWriteFailures() > failuresBefore, 5000, 'the publish.refused audit failure counted')
      expect(records.some((r) => r.msg === 'audit write failed')).toBe(true)
      const metrics = await (await fetch(`${gatehouse.http.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()
      expect(metrics).toMatch(/^gatehouse_audit_write_failures_total [1-9]/m)

      // nothing is corrupted
      const check = new Database(join(dataDir, 'gatehouse.db'), { readonly: true })
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok')
      check.close()

      // space freed: everything works again, without a restart
      rmSync(filler)
      rmSync(join(disk, 'filler-tail'))
      await authority.createDevice({ id: 'after-1' }, 'operator:test')
      const again = await fetch(`${gatehouse.http.url}/v1/devices/pump-1/settings`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ interval: 15 }),
      })
      expect(again.status).toBe(200)
      expect(again.headers.get('etag')).toBe('"2"') // the refused PATCH stored nothing: this is the first change
      const back = await connectDevice(gatehouse.mqtt.port, creds)
      await back.endAsync()
    },
  )

  it.skipIf(!mountable)(
    'keeps a dashboard session signed in whose use is due to be recorded, and refuses an expired one, while the disk is full',
    async () => {
      const disk = smallDisk('4m')
      if (disk === undefined) return console.warn('skipped: mount -t tmpfs was refused (run as root, as CI does)')
      const store = new SqliteRegistryStore(join(disk, 'gatehouse.db'))
      onTestFinished(() => store.close())
      const clock = fixedClock('2026-03-01T00:00:00Z')
      const { log, records } = createRecordingLogger('info')
      const sessions = createSessionStore({ clock, random: cryptoRandom, store: store.dashboardSessions, log }, { idleMs: 30 * 60_000 })
      const { id } = await sessions.create({ id: 'key-1', name: 'ops' })
      fill(disk)
      // writes are refused now (the WAL may take one or two first): sign in until one is
      let refused: { code?: string } | undefined
      for (let i = 0; i < 50 && refused === undefined; i++)
        await sessions.create({ id: `key-${i + 2}`, name: 'more' }).catch((err: { code?: string }) => (refused = err))
      expect(refused?.code).toBe('GH_STORE_DISK_FULL')

      clock.advance('2m') // its use is due to be written (every minute at most)
      expect(await sessions.get(id)).toMatchObject({ keyId: 'key-1' })
      expect(records.some((r) => r.msg === 'dashboard session use not recorded' && r.code === 'GH_STORE_DISK_FULL')).toBe(true)
      clock.advance('31m') // idle past its bound (its last recorded use is the sign-in): expired, not an error
      expect(await sessions.get(id)).toBeUndefined()
      expect(records.some((r) => r.msg === 'expired dashboard session not removed' && r.code === 'GH_STORE_DISK_FULL')).toBe(true)
    },
  )

  it.skipIf(!mountable)(
    'serves the stored CRL, still valid and complete, when its reissue cannot be stored, and never an expired one',
    async () => {
      const disk = smallDisk('4m')
      if (disk === undefined) return console.warn('skipped: mount -t tmpfs was refused (run as root, as CI does)')
      const store = new SqliteRegistryStore(join(disk, 'gatehouse.db'))
      onTestFinished(() => store.close())
      const clock = fixedClock('2026-03-01T00:00:00Z')
      const ca = await makeTestCa()
      const { log, records } = createRecordingLogger('info')
      const authority = createDeviceAuthority({ store, ca, clock, random: cryptoRandom, log }, { validDays: 30 })
      await authority.createDevice({ id: 'pump-1' }, 'op')
      await authority.createDevice({ id: 'pump-2' }, 'op')
      await authority.revokeDevice('pump-1', 'keyCompromise', 'op')
      const keyId = await issuerKeyId(ca.issuing.certificate)
      const issued = (await authority.crlByKeyId(keyId))!
      expect(issued.entries).toBe(1)
      fill(disk)
      let refused: { code?: string } | undefined
      for (let i = 0; i < 50 && refused === undefined; i++)
        await authority.createDevice({ id: `full-${i}` }, 'op').catch((err: { code?: string }) => (refused = err))
      expect(refused?.code).toBe('GH_STORE_DISK_FULL')

      clock.advance('4d') // past half of its 7 days: a fetch reissues it, and that write fails
      expect(await authority.crlByKeyId(keyId)).toMatchObject({ crlNumber: issued.crlNumber, entries: 1, pem: issued.pem })
      expect((await authority.currentCrl()).crlNumber).toBe(issued.crlNumber)
      expect(records.some((r) => r.msg === 'CRL not reissued: the stored one, still valid and complete, is served')).toBe(true)
      clock.advance('4d') // past its nextUpdate: an expired CRL is never served
      await expect(authority.crlByKeyId(keyId)).rejects.toMatchObject({ code: 'GH_STORE_DISK_FULL' })
    },
  )
})
