import type { Logger } from 'pino'
import {
  APP_NAME_PATTERN,
  AppNameInvalid,
  generateKeyPair,
  issueAppCertificate,
  normalizeSerial,
  parseCsr,
  privateKeyToPem,
  publicKeySha256,
  type Clock,
  type Random,
} from '../../certs/index.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import {
  AppCertificateLimit,
  AppCertificateNotFound,
  AppExists,
  AppLimit,
  AppNotFound,
  AppOptionsInvalid,
  AppRevoked,
  CsrKeyInUse,
} from '../errors.ts'
import { GROUP_PATTERN } from '../settings/settings-service.ts'
import type { AppCertificateRecord, AppRecord, AppStore } from '../store/app-store.ts'
import type { RegistryStore } from '../store/registry-store.ts'

/** What an app may subscribe to (the broker's APP_TOPIC_CLASSES, docs/device-protocol.md "Apps"). */
export const APP_CLASSES = ['telemetry', 'reported', 'insights'] as const
/** Active certificates one app may hold at once (a renewal's overlap, bounded). */
export const MAX_APP_CERTIFICATES = 5
const MAX_GROUPS = 64

export interface AppPolicy {
  /** active apps at most (config apps.maxApps) */
  maxApps: number
  /** validity of app certificates (days) */
  validDays: number
}

export interface NewApp {
  name: string
  /** null: every group */
  groups: string[] | null
  classes: string[]
  /** PEM or DER with CN `app:<name>`: the key never leaves the app */
  csr?: string | Uint8Array
}

export interface AppView {
  name: string
  groups: string[] | null
  classes: string[]
  status: 'active' | 'revoked'
  createdAt: string
  createdBy: string
  revokedAt: string | null
  certificates: { serial: string; fingerprint: string; notAfter: string; status: 'active' | 'revoked'; revokedAt: string | null }[]
}

/** A certificate issued to an app: its key only when Gatehouse made it (handed out once, never stored). */
export interface IssuedAppCertificate {
  app: AppView
  serial: string
  certificatePem: string
  chainPem: string
  privateKeyPem?: string
}

/** Issued, not yet registered: write the bundle, then commit() (as PreparedClaim). */
export interface PreparedApp {
  issued: IssuedAppCertificate
  commit(): Promise<IssuedAppCertificate>
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null

function viewOf(app: AppRecord, certs: AppCertificateRecord[]): AppView {
  return {
    name: app.name,
    groups: app.groups,
    classes: app.classes,
    status: app.status,
    createdAt: app.createdAt.toISOString(),
    createdBy: app.createdBy,
    revokedAt: iso(app.revokedAt),
    certificates: certs.map((c) => ({
      serial: c.serial,
      fingerprint: c.fingerprint,
      notAfter: c.notAfter.toISOString(),
      status: c.status,
      revokedAt: iso(c.revokedAt),
    })),
  }
}

function assertName(name: unknown): string {
  if (typeof name !== 'string' || !APP_NAME_PATTERN.test(name)) throw new AppNameInvalid(String(name).slice(0, 80))
  return name
}

function checkScope(req: NewApp): { groups: string[] | null; classes: string[] } {
  if (req.groups !== null) {
    if (!Array.isArray(req.groups) || req.groups.length === 0)
      throw new AppOptionsInvalid('give the groups it reads (--groups pumps,valves) or --all-groups')
    if (req.groups.length > MAX_GROUPS) throw new AppOptionsInvalid(`more than ${MAX_GROUPS} groups`)
    const bad = req.groups.find((g) => typeof g !== 'string' || !GROUP_PATTERN.test(g))
    if (bad !== undefined) throw new AppOptionsInvalid(`group '${String(bad).slice(0, 80)}' (use 1-64 of A-Z a-z 0-9 . _ -)`)
  }
  if (!Array.isArray(req.classes) || req.classes.length === 0)
    throw new AppOptionsInvalid(`give the topic classes it reads (--classes ${APP_CLASSES.join(',')})`)
  const unknown = req.classes.find((c) => !(APP_CLASSES as readonly string[]).includes(c))
  if (unknown !== undefined) throw new AppOptionsInvalid(`topic class '${String(unknown).slice(0, 40)}' (use ${APP_CLASSES.join(', ')})`)
  return { groups: req.groups === null ? null : [...new Set(req.groups)].sort(), classes: [...new Set(req.classes)].sort() }
}

export type AppService = ReturnType<typeof createAppService>

/**
 * Apps: MQTT identities that read devices' data within a scope (docs/device-protocol.md "Apps"), issued
 * and revoked by operators. Certificates come from the issuing CA through the same signer as devices'
 * (a PKCS#11 key included); each change commits with its audit entry and, for a revocation, the
 * app.revoked event the broker acts on. Bad input stores nothing.
 */
export function createAppService(
  deps: {
    store: RegistryStore
    apps: AppStore
    authority: Pick<DeviceAuthority, 'signingCa' | 'chainPem' | 'crlUrl' | 'currentCrls'>
    clock: Clock
    random: Random
    log: Logger
  },
  policy: AppPolicy,
) {
  const { store, apps, authority, clock, random, log } = deps

  async function require(name: string): Promise<AppRecord> {
    const app = await apps.get(assertName(name))
    if (!app) throw new AppNotFound(name)
    return app
  }

  const view = async (app: AppRecord): Promise<AppView> => viewOf(app, await apps.certificates(app.name))

  /** One key pair, one identity: a key of a device or of another app is refused. */
  async function assertKeyFree(name: string, keySha256: string): Promise<void> {
    if ((await store.certificatesWithKey(keySha256)).length > 0) throw new CsrKeyInUse()
    if ((await apps.certificatesWithKey(keySha256)).some((c) => c.appName !== name)) throw new CsrKeyInUse()
  }

  async function issue(name: string, csr: string | Uint8Array | undefined) {
    const keys = csr === undefined ? await generateKeyPair('p256') : undefined
    const publicKey = keys ? keys.publicKey : (await parseCsr(csr as string | Uint8Array, { expectedAppName: name })).publicKey
    const ca = await authority.signingCa()
    const crlUrl = await authority.crlUrl(ca)
    const notAfter = new Date(clock.now().getTime() + policy.validDays * 86_400_000)
    const cert = await issueAppCertificate(ca.issuing, { name, publicKey, notAfter, ...(crlUrl && { crlUrl }) }, { clock, random })
    const keySha256 = publicKeySha256(cert.pem)
    if (csr !== undefined) await assertKeyFree(name, keySha256)
    const record: AppCertificateRecord = {
      serial: cert.serial,
      appName: name,
      fingerprint: cert.fingerprint,
      keySha256,
      notAfter: cert.notAfter,
      status: 'active',
      pem: cert.pem,
      createdAt: clock.now(),
      revokedAt: null,
    }
    return { record, privateKeyPem: keys && (await privateKeyToPem(keys.privateKey)) }
  }

  function issued(app: AppView, record: AppCertificateRecord, privateKeyPem: string | undefined): IssuedAppCertificate {
    return {
      app,
      serial: record.serial,
      certificatePem: record.pem,
      chainPem: authority.chainPem(),
      ...(privateKeyPem && { privateKeyPem }),
    }
  }

  return {
    list: async (): Promise<AppView[]> => Promise.all((await apps.list()).map(view)),
    get: async (name: string): Promise<AppView> => view(await require(name)),
    /** for the registry directory (lookupApp) */
    record: (name: string): Promise<AppRecord | undefined> => apps.get(name),
    certificateByFingerprint: (fingerprint: string): Promise<AppCertificateRecord | undefined> =>
      apps.certificateByFingerprint(fingerprint),

    /** Checks the input and issues the certificate; nothing is registered until commit(). */
    async prepareCreate(req: NewApp, actor: string): Promise<PreparedApp> {
      const name = assertName(req.name)
      const scope = checkScope(req)
      if (await apps.get(name)) throw new AppExists(name, name)
      if ((await apps.countActive()) >= policy.maxApps) throw new AppLimit(policy.maxApps)
      const { record, privateKeyPem } = await issue(name, req.csr)
      const app: AppRecord = { name, ...scope, status: 'active', createdAt: clock.now(), createdBy: actor, revokedAt: null }
      const result = issued(viewOf(app, [record]), record, privateKeyPem)
      return {
        issued: result,
        commit: async () => {
          await store.transaction(async () => {
            if ((await apps.countActive()) >= policy.maxApps) throw new AppLimit(policy.maxApps)
            await apps.insert(app)
            await apps.insertCertificate(record)
            await store.appendAudit({
              at: clock.now(),
              actor,
              action: 'app.created',
              subject: `app:${name}`,
              details: { ...scope, serial: record.serial, fromCsr: req.csr !== undefined },
            })
          })
          log.info({ actor, appName: name, serial: record.serial }, 'app created')
          return result
        },
      }
    },

    /** A new certificate for an active app; its other certificates keep working until revoked. */
    async prepareRenew(name: string, actor: string, csr?: string | Uint8Array): Promise<PreparedApp> {
      const app = await require(name)
      if (app.status === 'revoked') throw new AppRevoked(name)
      const active = (await apps.certificates(name)).filter((c) => c.status === 'active')
      if (active.length >= MAX_APP_CERTIFICATES) throw new AppCertificateLimit(name, MAX_APP_CERTIFICATES, name)
      const { record, privateKeyPem } = await issue(name, csr)
      const result = issued(viewOf(app, [...(await apps.certificates(name)), record]), record, privateKeyPem)
      return {
        issued: result,
        commit: async () => {
          await store.transaction(async () => {
            await apps.insertCertificate(record)
            await store.appendAudit({
              at: clock.now(),
              actor,
              action: 'app.renewed',
              subject: `app:${name}`,
              details: { serial: record.serial, fromCsr: csr !== undefined },
            })
          })
          log.info({ actor, appName: name, serial: record.serial }, 'app certificate issued')
          return result
        },
      }
    },

    /**
     * Revokes the app (permanent) or, given a serial, one of its certificates. Its live session is
     * closed, or given a serial only a session on that certificate (app.revoked, with the serial: the
     * broker cuts it off within the change feed's interval), and the certificate goes on the CRL. The serial
     * may be written as openssl or Node print it (upper case, colons, a leading 00): it is compared, stored and
     * sent in its canonical form (normalizeSerial), the registry's; anything but hex is GH_SERIAL_INVALID.
     */
    async revoke(name: string, actor: string, given?: string): Promise<AppView> {
      const serial = given === undefined ? undefined : normalizeSerial(given)
      const app = await require(name)
      if (app.status === 'revoked') throw new AppRevoked(name)
      const certs = await apps.certificates(name)
      if (serial !== undefined && !certs.some((c) => c.serial === serial && c.status === 'active'))
        throw new AppCertificateNotFound(name, String(serial).slice(0, 80), name)
      // the CRLs are signed after the commit: the CA's key is read first, so a key that cannot be read changes nothing
      await authority.signingCa()
      const at = clock.now()
      await store.transaction(async () => {
        if (serial === undefined) await apps.revoke(name, at)
        else await apps.revokeCertificate(serial, at)
        const serials = serial === undefined ? certs.filter((c) => c.status === 'active').map((c) => c.serial) : [serial]
        await store.appendAudit({
          at,
          actor,
          action: serial === undefined ? 'app.revoked' : 'app.certificate.revoked',
          subject: `app:${name}`,
          details: { serials },
        })
        await store.appendEvent('app.revoked', serial === undefined ? { name } : { name, serial }, at)
      })
      log.info({ actor, appName: name, serial }, serial === undefined ? 'app revoked' : 'app certificate revoked')
      // reissued now: each CRL is rebuilt when its count of revoked certificates changed
      await authority.currentCrls()
      return view(await require(name))
    },
  }
}
