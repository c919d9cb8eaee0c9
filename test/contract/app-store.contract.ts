import { describe, expect, it } from 'vitest'
import type { AppCertificateRecord, AppRecord, AppStore } from '../../provisioning/store/app-store.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')
const t1 = new Date('2026-01-02T00:00:00.000Z')

const app = (name: string, over: Partial<AppRecord> = {}): AppRecord => ({
  name,
  groups: ['pumps', 'valves'],
  classes: ['telemetry', 'reported'],
  status: 'active',
  createdAt: t0,
  createdBy: 'operator:test',
  revokedAt: null,
  ...over,
})

const cert = (serial: string, appName: string, over: Partial<AppCertificateRecord> = {}): AppCertificateRecord => ({
  serial,
  appName,
  fingerprint: `fp-${serial}`,
  keySha256: `key-${serial}`,
  notAfter: new Date('2027-01-01T00:00:00.000Z'),
  status: 'active',
  pem: `-----BEGIN CERTIFICATE-----\n${serial}\n-----END CERTIFICATE-----\n`,
  createdAt: t0,
  revokedAt: null,
  ...over,
})

/**
 * The behaviour every AppStore must have, written from SqliteAppStore's: SqliteAppStore runs it in
 * integration/provisioning/, PgAppStore in integration/postgres/. `make` returns a fresh store with no apps.
 * A duplicate or an unknown app is the coded error both engines map it to.
 */
export function appStoreContract(name: string, make: () => AppStore | Promise<AppStore>): void {
  describe(`${name} (AppStore contract)`, () => {
    it('stores an app active and reads it back with every field; null groups is every group', async () => {
      const store = await make()
      await store.insert(app('dash'))
      await store.insert(app('all', { groups: null, classes: ['insights'] }))
      expect(await store.get('dash')).toEqual(app('dash'))
      expect(await store.get('all')).toEqual(app('all', { groups: null, classes: ['insights'] }))
      expect(await store.get('nope')).toBeUndefined()
      expect((await store.list()).map((a) => a.name)).toEqual(['all', 'dash'])
    })

    it('stores a new app as active whatever status the record carries', async () => {
      const store = await make()
      await store.insert(app('dash', { status: 'revoked', revokedAt: t1 }))
      expect(await store.get('dash')).toEqual(app('dash'))
    })

    it('refuses a second app with the same name as GH_APP_EXISTS, keeping the first', async () => {
      const store = await make()
      await store.insert(app('dash'))
      await expect(store.insert(app('dash', { groups: null }))).rejects.toMatchObject({ code: 'GH_APP_EXISTS' })
      expect(await store.list()).toEqual([app('dash')])
    })

    it('orders names bytewise (uppercase before lowercase), whatever the database locale', async () => {
      const store = await make()
      for (const n of ['b', 'a', 'B', 'a-2']) await store.insert(app(n))
      expect((await store.list()).map((a) => a.name)).toEqual(['B', 'a', 'a-2', 'b'])
    })

    it('counts the apps not revoked', async () => {
      const store = await make()
      expect(await store.countActive()).toBe(0)
      await store.insert(app('a'))
      await store.insert(app('b'))
      await store.revoke('a', t1)
      expect(await store.countActive()).toBe(1)
    })

    it('stores certificates per app, oldest first, found by fingerprint and by key', async () => {
      const store = await make()
      await store.insert(app('dash'))
      await store.insert(app('other'))
      await store.insertCertificate(cert('02', 'dash', { createdAt: t1 }))
      await store.insertCertificate(cert('01', 'dash', { status: 'revoked', revokedAt: t1 }))
      await store.insertCertificate(cert('03', 'other', { keySha256: 'key-02' }))
      expect(await store.certificates('dash')).toEqual([cert('01', 'dash'), cert('02', 'dash', { createdAt: t1 })])
      expect(await store.certificates('nope')).toEqual([])
      expect(await store.certificateByFingerprint('fp-03')).toEqual(cert('03', 'other', { keySha256: 'key-02' }))
      expect(await store.certificateByFingerprint('fp-nope')).toBeUndefined()
      expect((await store.certificatesWithKey('key-02')).map((c) => c.serial).sort()).toEqual(['02', '03'])
      expect(await store.certificatesWithKey('key-none')).toEqual([])
    })

    it('refuses a certificate with a taken serial or fingerprint (GH_CERT_EXISTS) or of an unknown app (GH_APP_NOT_FOUND)', async () => {
      const store = await make()
      await store.insert(app('dash'))
      await store.insertCertificate(cert('01', 'dash'))
      await expect(store.insertCertificate(cert('01', 'dash', { fingerprint: 'fp-x' }))).rejects.toMatchObject({ code: 'GH_CERT_EXISTS' })
      await expect(store.insertCertificate(cert('02', 'dash', { fingerprint: 'fp-01' }))).rejects.toMatchObject({ code: 'GH_CERT_EXISTS' })
      await expect(store.insertCertificate(cert('03', 'ghost'))).rejects.toMatchObject({ code: 'GH_APP_NOT_FOUND' })
      expect((await store.certificates('dash')).map((c) => c.serial)).toEqual(['01'])
      expect(await store.certificateByFingerprint('fp-03')).toBeUndefined()
    })

    it('revokes one certificate once: true when it was active', async () => {
      const store = await make()
      await store.insert(app('dash'))
      await store.insertCertificate(cert('01', 'dash'))
      await store.insertCertificate(cert('02', 'dash'))
      expect(await store.revokeCertificate('01', t1)).toBe(true)
      expect(await store.revokeCertificate('01', new Date('2026-01-05T00:00:00.000Z'))).toBe(false)
      expect(await store.revokeCertificate('ghost', t1)).toBe(false)
      expect(await store.revokedCertificates()).toEqual([cert('01', 'dash', { status: 'revoked', revokedAt: t1 })])
      expect((await store.get('dash'))?.status).toBe('active')
    })

    it('revokes an app with every active certificate of it, once, keeping the first revokedAt', async () => {
      const store = await make()
      await store.insert(app('dash'))
      await store.insert(app('other'))
      await store.insertCertificate(cert('01', 'dash'))
      await store.insertCertificate(cert('02', 'dash'))
      await store.insertCertificate(cert('03', 'other'))
      const early = new Date('2026-01-01T12:00:00.000Z')
      await store.revokeCertificate('02', early)
      await store.revoke('dash', t1)
      await store.revoke('dash', new Date('2026-01-09T00:00:00.000Z'))
      await store.revoke('ghost', t1)
      expect(await store.get('dash')).toEqual(app('dash', { status: 'revoked', revokedAt: t1 }))
      expect(await store.certificates('dash')).toEqual([
        cert('01', 'dash', { status: 'revoked', revokedAt: t1 }),
        cert('02', 'dash', { status: 'revoked', revokedAt: early }),
      ])
      expect((await store.revokedCertificates()).map((c) => c.serial)).toEqual(['01', '02'])
      expect(await store.get('other')).toEqual(app('other'))
      expect((await store.certificateByFingerprint('fp-03'))?.status).toBe('active')
    })

    it('hands out copies: changing a returned app changes nothing stored', async () => {
      const store = await make()
      await store.insert(app('dash'))
      const got = (await store.get('dash'))!
      got.groups!.push('x')
      got.classes.length = 0
      expect(await store.get('dash')).toEqual(app('dash'))
    })
  })
}
