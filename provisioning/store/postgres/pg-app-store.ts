import { AppExists, AppNotFound, CertificateExists } from '../../errors.ts'
import type { AppCertificateRecord, AppRecord, AppStore } from '../app-store.ts'
import type { PgDatabase } from './pg-database.ts'
import { isForeignKeyViolation, isUniqueViolation } from './pg-failure.ts'
import { num } from './pg-rows.ts'
import { toApp, toAppCertificate } from '../record-rows.ts'

/**
 * AppStore on the registry's PostgreSQL database (constructed by PgRegistryStore), with SqliteAppStore's
 * semantics (test/contract/app-store.contract.ts): a taken name is GH_APP_EXISTS, a taken serial or
 * fingerprint GH_CERT_EXISTS, a certificate of an unknown app GH_APP_NOT_FOUND.
 */
export class PgAppStore implements AppStore {
  readonly #db: PgDatabase

  constructor(db: PgDatabase) {
    this.#db = db
  }

  #write(sql: string, params: readonly unknown[]): Promise<number> {
    return this.#db.transaction(() => this.#db.execute(sql, params))
  }

  async list(): Promise<AppRecord[]> {
    return (await this.#db.query('SELECT * FROM apps ORDER BY name')).map(toApp)
  }

  async get(name: string): Promise<AppRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM apps WHERE name = $1', [name])
    return r && toApp(r)
  }

  async countActive(): Promise<number> {
    const [r] = await this.#db.query("SELECT count(*) AS n FROM apps WHERE status = 'active'")
    return num(r?.n)
  }

  async insert(a: AppRecord): Promise<void> {
    try {
      await this.#write(
        `INSERT INTO apps (name, groups, classes, status, created_at, created_by, revoked_at)
         VALUES ($1, $2, $3, 'active', $4, $5, NULL)`,
        [a.name, a.groups === null ? null : JSON.stringify(a.groups), JSON.stringify(a.classes), a.createdAt, a.createdBy],
      )
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppExists(a.name, a.name, { cause: err })
      throw err
    }
  }

  async revoke(name: string, at: Date): Promise<void> {
    await this.#db.transaction(async () => {
      await this.#db.execute("UPDATE apps SET status = 'revoked', revoked_at = $1 WHERE name = $2 AND status = 'active'", [at, name])
      await this.#db.execute("UPDATE app_certificates SET status = 'revoked', revoked_at = $1 WHERE app_name = $2 AND status = 'active'", [
        at,
        name,
      ])
    })
  }

  async certificates(name: string): Promise<AppCertificateRecord[]> {
    return (await this.#db.query('SELECT * FROM app_certificates WHERE app_name = $1 ORDER BY created_at, serial', [name])).map(
      toAppCertificate,
    )
  }

  async certificateByFingerprint(fingerprint: string): Promise<AppCertificateRecord | undefined> {
    const [r] = await this.#db.query('SELECT * FROM app_certificates WHERE fingerprint = $1', [fingerprint])
    return r && toAppCertificate(r)
  }

  async insertCertificate(c: AppCertificateRecord): Promise<void> {
    try {
      await this.#write(
        `INSERT INTO app_certificates (serial, app_name, fingerprint, key_sha256, not_after, status, pem, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, NULL)`,
        [c.serial, c.appName, c.fingerprint, c.keySha256, c.notAfter, c.pem, c.createdAt],
      )
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new AppNotFound(c.appName, { cause: err })
      if (isUniqueViolation(err)) throw new CertificateExists(c.serial, { cause: err })
      throw err
    }
  }

  async revokeCertificate(serial: string, at: Date): Promise<boolean> {
    return (
      (await this.#write("UPDATE app_certificates SET status = 'revoked', revoked_at = $1 WHERE serial = $2 AND status = 'active'", [
        at,
        serial,
      ])) > 0
    )
  }

  async revokedCertificates(): Promise<AppCertificateRecord[]> {
    return (await this.#db.query("SELECT * FROM app_certificates WHERE status = 'revoked' ORDER BY serial")).map(toAppCertificate)
  }

  async certificatesWithKey(keySha256: string): Promise<AppCertificateRecord[]> {
    return (await this.#db.query('SELECT * FROM app_certificates WHERE key_sha256 = $1', [keySha256])).map(toAppCertificate)
  }
}
