import { AppExists, AppNotFound, CertificateExists } from '../errors.ts'
import { isSqliteDuplicate, isSqliteForeignKey } from './store-failure.ts'
import type { TransactionGate } from './transaction-gate.ts'
import type Database from 'better-sqlite3'
import type { AppCertificateRecord, AppRecord, AppStore } from './app-store.ts'
import { toApp, toAppCertificate, type Row } from './record-rows.ts'

/**
 * AppStore on the registry's SQLite connection (constructed by SqliteRegistryStore); see app-store.ts for why
 * each call settles at once. A taken name is GH_APP_EXISTS, a taken serial or fingerprint GH_CERT_EXISTS, a
 * certificate of an unknown app GH_APP_NOT_FOUND, as on PostgreSQL (test/contract/app-store.contract.ts).
 */
export class SqliteAppStore implements AppStore {
  readonly #s

  readonly #gate: TransactionGate

  constructor(db: Database.Database, gate: TransactionGate) {
    this.#gate = gate
    this.#s = {
      list: db.prepare('SELECT * FROM apps ORDER BY name'),
      get: db.prepare('SELECT * FROM apps WHERE name = ?'),
      countActive: db.prepare("SELECT count(*) AS n FROM apps WHERE status = 'active'"),
      insert: db.prepare(
        "INSERT INTO apps (name, groups, classes, status, created_at, created_by, revoked_at) VALUES (?, ?, ?, 'active', ?, ?, NULL)",
      ),
      revoke: db.prepare("UPDATE apps SET status = 'revoked', revoked_at = ? WHERE name = ? AND status = 'active'"),
      revokeAllCerts: db.prepare("UPDATE app_certificates SET status = 'revoked', revoked_at = ? WHERE app_name = ? AND status = 'active'"),
      certificates: db.prepare('SELECT * FROM app_certificates WHERE app_name = ? ORDER BY created_at, serial'),
      byFingerprint: db.prepare('SELECT * FROM app_certificates WHERE fingerprint = ?'),
      insertCert: db.prepare(
        `INSERT INTO app_certificates (serial, app_name, fingerprint, key_sha256, not_after, status, pem, created_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, 'active', ?, ?, NULL)`,
      ),
      revokeCert: db.prepare("UPDATE app_certificates SET status = 'revoked', revoked_at = ? WHERE serial = ? AND status = 'active'"),
      revoked: db.prepare("SELECT * FROM app_certificates WHERE status = 'revoked' ORDER BY serial"),
      withKey: db.prepare('SELECT * FROM app_certificates WHERE key_sha256 = ?'),
    }
  }

  list(): Promise<AppRecord[]> {
    return this.#gate.run(() => (this.#s.list.all() as Row[]).map(toApp))
  }

  get(name: string): Promise<AppRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.get.get(name) as Row | undefined
      return r && toApp(r)
    })
  }

  countActive(): Promise<number> {
    return this.#gate.run(() => Number((this.#s.countActive.get() as Row).n))
  }

  insert(a: AppRecord): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#s.insert.run(
          a.name,
          a.groups === null ? null : JSON.stringify(a.groups),
          JSON.stringify(a.classes),
          a.createdAt.toISOString(),
          a.createdBy,
        )
      } catch (err) {
        if (isSqliteDuplicate(err)) throw new AppExists(a.name, a.name, { cause: err })
        throw err
      }
    })
  }

  revoke(name: string, at: Date): Promise<void> {
    return this.#gate.run(() => {
      this.#s.revoke.run(at.toISOString(), name)
      this.#s.revokeAllCerts.run(at.toISOString(), name)
    })
  }

  certificates(name: string): Promise<AppCertificateRecord[]> {
    return this.#gate.run(() => (this.#s.certificates.all(name) as Row[]).map(toAppCertificate))
  }

  certificateByFingerprint(fingerprint: string): Promise<AppCertificateRecord | undefined> {
    return this.#gate.run(() => {
      const r = this.#s.byFingerprint.get(fingerprint) as Row | undefined
      return r && toAppCertificate(r)
    })
  }

  insertCertificate(c: AppCertificateRecord): Promise<void> {
    return this.#gate.run(() => {
      try {
        this.#s.insertCert.run(c.serial, c.appName, c.fingerprint, c.keySha256, c.notAfter.toISOString(), c.pem, c.createdAt.toISOString())
      } catch (err) {
        if (isSqliteForeignKey(err)) throw new AppNotFound(c.appName, { cause: err })
        if (isSqliteDuplicate(err)) throw new CertificateExists(c.serial, { cause: err })
        throw err
      }
    })
  }

  revokeCertificate(serial: string, at: Date): Promise<boolean> {
    return this.#gate.run(() => this.#s.revokeCert.run(at.toISOString(), serial).changes > 0)
  }

  revokedCertificates(): Promise<AppCertificateRecord[]> {
    return this.#gate.run(() => (this.#s.revoked.all() as Row[]).map(toAppCertificate))
  }

  certificatesWithKey(keySha256: string): Promise<AppCertificateRecord[]> {
    return this.#gate.run(() => (this.#s.withKey.all(keySha256) as Row[]).map(toAppCertificate))
  }
}
