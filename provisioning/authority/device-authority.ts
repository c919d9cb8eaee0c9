import type { Logger } from 'pino'
import {
  assertDeviceId,
  chainPem,
  crlUrl,
  exportPrivateKeyPkcs8,
  generateKeyObjects,
  issueDeviceCertificateDer,
  issuerKeyId,
  parseCsr,
  pkcs8ToPem,
  type CaCertificates,
  type OperatingCa,
  type Clock,
  type CrlReason,
  type AnyKey,
  type KeyAlgorithm,
  type Random,
} from '../../certs/index.ts'
import { CsrKeyInUse, DeviceExists, DeviceNotFound, DeviceRevoked, DeviceStateConflict } from '../errors.ts'
import type { ControlEvent } from '../events.ts'
import type {
  AuditEntry,
  AuditFilter,
  CertificateRecord,
  DeviceFilter,
  DeviceRecord,
  DeviceStatus,
  Labels,
  RegistryStore,
} from '../store/registry-store.ts'
import type { AppCertificateRecord } from '../store/app-store.ts'
import type { ClaimRecord } from '../store/claim-store.ts'
import { createCrlService, type CrlSnapshot } from '../ca/index.ts'
import { createBatchProvisioner, type BatchRequest, type PreparedBatch } from './batch.ts'
import { createDeviceChanges } from './device-changes.ts'
import { assertLabels } from './labels.ts'

export type AuthorityDeps = AuthorityBaseDeps & AuthorityCa

/** The CA an authority issues with: keys and all, or only its certificates and how to read the keys when something first signs. */
export type AuthorityCa =
  | { ca: OperatingCa }
  | {
      /** the CA's certificates (loadCaCertificates, the CLI) */
      ca: CaCertificates
      /** reads the whole CA, keys and all (loadCa); a failure is thrown to the signature that asked, which changed nothing */
      loadCa(): Promise<OperatingCa>
    }

interface AuthorityBaseDeps {
  store: RegistryStore
  clock: Clock
  random: Random
  log: Logger
  /** the claims, whose revoked certificates go on the CRLs too (the ClaimStore) */
  claims?: { list(): Promise<ClaimRecord[]> }
  /** the apps, whose revoked certificates go on the CRLs too (the AppStore) */
  apps?: { revokedCertificates(): Promise<AppCertificateRecord[]> }
}

export interface AuthorityOptions {
  /** validity of device certificates (days) */
  validDays?: number
  keyAlgorithm?: KeyAlgorithm
  defaultTier?: string
  /** how long a renewed device's previous certificate keeps working (hours) */
  renewOverlapHours?: number
  /**
   * The public base URL of the CRLs (`crlBaseUrl`): every certificate issued then names its issuer's CRL,
   * `<crlBaseUrl>/crl/<issuer key id>.crl`, in a CRL Distribution Points extension.
   */
  crlBaseUrl?: string
}

/** A device as an app or operator asks for it: transport types are mapped to this at the edge. */
export interface NewDevice {
  id: string
  group?: string | null
  tier?: string
  /** PEM or DER; when given, Gatehouse signs its public key and never sees a private key */
  csr?: string | Uint8Array
  validDays?: number
  /** key=value labels (provisioning/authority/labels.ts) */
  labels?: Labels
}

export interface RenewalRequest {
  csr?: string | Uint8Array
  validDays?: number
  /** how the renewal was asked for (audited as details.via), e.g. 'mqtt' for a device's own request */
  via?: string
}

/** Plain data (no parsed certificate: parseCertificateDer(certificateDer) when one is needed). */
export interface IssuedCertificate {
  deviceId: string
  certificateDer: Uint8Array
  certificatePem: string
  notBefore: Date
  notAfter: Date
  /** the chain the device trusts (issuing CA(s) + root), PEM */
  chainPem: string
  serial: string
  fingerprint: string
  /** SHA-256 of the public key (SPKI DER): one key pair, one device */
  keySha256: string
  /** only when Gatehouse generated the key: handed out once, never stored */
  privateKey?: { pkcs8: Uint8Array; pem: string }
}

export interface IssuedDevice extends IssuedCertificate {
  device: DeviceRecord
}

/** An issued but not yet registered device: write its files, then commit (see batch.ts). */
export interface PreparedDevice {
  issued: IssuedDevice
  commit(): Promise<void>
}

export interface DeviceDetails {
  device: DeviceRecord
  certificates: CertificateRecord[]
}

export type Actor = string

export function createDeviceAuthority(deps: AuthorityDeps, options: AuthorityOptions = {}) {
  const { store, clock, random, log } = deps
  const validDays = options.validDays ?? 365
  const keyAlgorithm = options.keyAlgorithm ?? 'p256'
  const defaultTier = options.defaultTier ?? 'standard'
  const overlapMs = (options.renewOverlapHours ?? 24) * 3600_000
  // The CA in use: its certificates and chain from the start; its keys, with the CRLs they sign, from the first
  // signature (signer()): at once when the deps bring them, else read then, so a command that signs nothing
  // never reads a CA key (issue 14). reloadCa() swaps all of it after a rotation.
  let ca: CaCertificates = deps.ca
  let chain = chainPem(ca)
  let signing: Promise<Signing> | undefined
  if (!('loadCa' in deps)) use(deps.ca)
  const crlUrls = new WeakMap<CaCertificates, Promise<string | undefined>>()

  interface Signing {
    ca: OperatingCa
    crl: ReturnType<typeof createCrlService>
  }

  /** Issues with this CA from now on: its chain and CRLs follow it. */
  function use(next: OperatingCa): Signing {
    ca = next
    chain = chainPem(next)
    const crl = createCrlService({
      store,
      ca: next,
      clock,
      log,
      ...(deps.claims && { claims: deps.claims }),
      ...(deps.apps && { apps: deps.apps }),
    })
    const now = { ca: next, crl }
    signing = Promise.resolve(now)
    return now
  }

  /**
   * The CA with its keys, and its CRLs: read on first use when the deps brought only its certificates (it then
   * replaces them: a rotation in between is taken whole). A failed read is not kept; the next signature reads again.
   */
  function signer(): Promise<Signing> {
    if (signing) return signing
    if (!('loadCa' in deps)) return Promise.resolve(use(deps.ca))
    const loading: Promise<Signing> = deps.loadCa().then((loaded) => (signing === loading ? use(loaded) : signer()))
    signing = loading
    loading.catch(() => {
      if (signing === loading) signing = undefined
    })
    return loading
  }

  /** The CRL URL that certificates of this CA's issuing CA carry, or undefined without a crlBaseUrl. */
  function crlUrlOf(of: CaCertificates): Promise<string | undefined> {
    const base = options.crlBaseUrl
    if (base === undefined) return Promise.resolve(undefined)
    let url = crlUrls.get(of)
    if (url === undefined) {
      url = issuerKeyId(of.issuing.certificate).then((keyId) => crlUrl(base, keyId))
      crlUrls.set(of, url)
    }
    return url
  }

  /** The audit entry and the event commit in the caller's transaction, with the change itself. */
  async function record(
    actor: Actor,
    action: string,
    subject: string,
    details: Record<string, unknown>,
    events: ControlEvent[],
  ): Promise<void> {
    const at = clock.now()
    await store.appendAudit({ at, actor, action, subject, details })
    for (const { type, ...data } of events) await store.appendEvent(type, data, at)
  }

  /** One key pair, one device: a key in any certificate of another device is refused (docs/device-lifecycle.md). */
  async function assertKeyFree(deviceId: string, keySha256: string): Promise<void> {
    if ((await store.certificatesWithKey(keySha256)).some((c) => c.deviceId !== deviceId)) throw new CsrKeyInUse()
  }

  async function issueCertificate(deviceId: string, csr: string | Uint8Array | undefined, days: number): Promise<IssuedCertificate> {
    let publicKey: AnyKey
    let privateKey: AnyKey | undefined
    if (csr !== undefined) {
      publicKey = (await parseCsr(csr, { expectedDeviceId: deviceId })).publicKey
    } else {
      const pair = await generateKeyObjects(keyAlgorithm) // handed out, never used here: no CryptoKey needed
      publicKey = pair.publicKey
      privateKey = pair.privateKey
    }
    // the PKCS#8 is built (from the pair's one JWK export, certs/keys.ts) while the signature is on the thread pool
    const { ca: issuing } = await signer()
    const url = await crlUrlOf(issuing)
    const [cert, pkcs8] = await Promise.all([
      issueDeviceCertificateDer(issuing.issuing, { deviceId, publicKey, validDays: days, ...(url && { crlUrl: url }) }, { clock, random }),
      privateKey && exportPrivateKeyPkcs8(privateKey),
    ])
    const keySha256 = cert.keySha256
    if (csr !== undefined) await assertKeyFree(deviceId, keySha256)
    return {
      deviceId,
      certificateDer: cert.der,
      certificatePem: cert.pem,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      chainPem: chain,
      serial: cert.serial,
      fingerprint: cert.fingerprint,
      keySha256,
      ...(pkcs8 && { privateKey: { pkcs8, pem: pkcs8ToPem(pkcs8) } }),
    }
  }

  function certificateRecord(issued: IssuedCertificate): CertificateRecord {
    return {
      serial: issued.serial,
      deviceId: issued.deviceId,
      fingerprint: issued.fingerprint,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      status: 'active',
      supersededAt: null,
      revokedAt: null,
      revocationReason: null,
      pem: issued.certificatePem,
      createdAt: clock.now(),
      keySha256: issued.keySha256,
    }
  }

  /**
   * The certificate into the registry, in the caller's transaction; a key from a CSR checked again there (a
   * concurrent request). A key Gatehouse just generated (privateKey) is in no other certificate: not looked up.
   */
  async function insertCertificate(issued: IssuedCertificate): Promise<void> {
    if (issued.privateKey === undefined) await assertKeyFree(issued.deviceId, issued.keySha256)
    await store.insertCertificate(certificateRecord(issued))
  }

  async function requireDevice(id: string): Promise<DeviceRecord> {
    const device = await store.getDevice(id)
    if (!device) throw new DeviceNotFound(id)
    return device
  }

  /**
   * Issues the certificate for a new device; nothing is registered until commit(). `idChecked`: the caller has
   * just looked the id up (a batch looks up all of its ids first), so it is not read again; the commit's insert
   * still refuses an id taken in between.
   */
  async function prepareDevice(req: NewDevice, actor: Actor, idChecked = false): Promise<PreparedDevice> {
    const id = assertDeviceId(req.id)
    const labels = req.labels === undefined ? {} : assertLabels(req.labels)
    if (!idChecked && (await store.getDevice(id))) throw new DeviceExists(id, id)
    const issued = await issueCertificate(id, req.csr, req.validDays ?? validDays)
    const now = clock.now()
    const device: DeviceRecord = {
      id,
      group: req.group ?? null,
      tier: req.tier ?? defaultTier,
      status: 'active',
      createdAt: now,
      updatedAt: now,
    }
    return {
      issued: { ...issued, device },
      commit: () =>
        store.transaction(async () => {
          await store.insertDevice(device)
          if (Object.keys(labels).length > 0) await store.setLabels(id, labels)
          await insertCertificate(issued)
          await record(
            actor,
            'device.created',
            id,
            {
              group: device.group,
              tier: device.tier,
              serial: issued.serial,
              fromCsr: req.csr !== undefined,
              ...(Object.keys(labels).length > 0 && { labels }),
            },
            [
              { type: 'device.created', deviceId: id },
              { type: 'certificate.issued', deviceId: id, serial: issued.serial },
            ],
          )
        }),
    }
  }

  /** Issues a renewal certificate; nothing changes in the registry until commit(). */
  async function prepareRenewal(
    id: string,
    req: RenewalRequest,
    actor: Actor,
  ): Promise<{ issued: IssuedCertificate; commit(): Promise<void> }> {
    const device = await requireDevice(assertDeviceId(id))
    if (device.status === 'revoked') throw new DeviceRevoked(id)
    const issued = await issueCertificate(id, req.csr, req.validDays ?? validDays)
    const commit = async (): Promise<void> => {
      const supersededAt = new Date(clock.now().getTime() + overlapMs)
      await store.transaction(async () => {
        if ((await requireDevice(id)).status === 'revoked') throw new DeviceRevoked(id)
        const previous = (await store.listCertificates(id)).filter((c) => c.status === 'active')
        for (const c of previous) await store.updateCertificate(c.serial, { status: 'superseded', supersededAt })
        await insertCertificate(issued)
        await record(
          actor,
          'device.renewed',
          id,
          {
            serial: issued.serial,
            superseded: previous.map((c) => c.serial),
            supersededAt: supersededAt.toISOString(),
            ...(req.via && { via: req.via }),
          },
          [
            { type: 'certificate.issued', deviceId: id, serial: issued.serial },
            ...previous.map((c) => ({
              type: 'certificate.superseded' as const,
              deviceId: id,
              serial: c.serial,
              supersededAt: supersededAt.toISOString(),
            })),
          ],
        )
      })
      log.info({ deviceId: id, serial: issued.serial, actor }, 'device renewed')
    }
    return { issued, commit }
  }

  const batch = createBatchProvisioner({ store, clock, log, prepareDevice, certificateRecord, record, validDays })

  /** Revokes the device and its live certificates in the caller's transaction; returns their serials. */
  async function revokeInTransaction(id: string, reason: CrlReason, actor: Actor, extra: Record<string, unknown> = {}): Promise<string[]> {
    const device = await requireDevice(id)
    if (device.status === 'revoked') throw new DeviceRevoked(id)
    const at = clock.now()
    const live = (await store.listCertificates(id)).filter((c) => c.status !== 'revoked')
    for (const c of live) await store.updateCertificate(c.serial, { status: 'revoked', revokedAt: at, revocationReason: reason })
    await store.updateDeviceStatus(id, 'revoked', at)
    await record(actor, 'device.revoked', id, { reason, serials: live.map((c) => c.serial), ...extra }, [
      { type: 'device.revoked', deviceId: id },
      ...live.map((c) => ({ type: 'certificate.revoked' as const, deviceId: id, serial: c.serial })),
    ])
    return live.map((c) => c.serial)
  }

  /** Disables or enables the device in the caller's transaction. */
  async function setStatusInTransaction(
    id: string,
    status: Exclude<DeviceStatus, 'revoked'>,
    actor: Actor,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const device = await requireDevice(id)
    if (device.status === 'revoked') throw new DeviceRevoked(id)
    if (device.status === status) throw new DeviceStateConflict(id, status, `it is already ${status}`)
    await store.updateDeviceStatus(id, status, clock.now())
    const action = status === 'disabled' ? 'device.disabled' : 'device.enabled'
    await record(actor, action, id, extra, [{ type: action, deviceId: id }])
  }

  const changes = createDeviceChanges({
    store,
    clock,
    log,
    record,
    requireDevice,
    revokeInTransaction,
    setStatusInTransaction,
    refreshCrl: async () => (await signer()).crl.refresh(),
    signingCa: async () => (await signer()).ca,
  })

  return {
    chainPem: (): string => chain,
    /** the CA's certificates (its keys: signingCa()) */
    get ca(): CaCertificates {
      return ca
    },
    /** The CA with its keys, read now if not yet: what signs (claims, apps, the readiness check). */
    signingCa: async (): Promise<OperatingCa> => (await signer()).ca,
    /** The CRL URL that certificates of this CA (default: the current one) carry; undefined without crlBaseUrl. */
    crlUrl: (of: CaCertificates = ca): Promise<string | undefined> => crlUrlOf(of),

    /** Issues with this CA from now on (after `ca rotate`): the chain and the CRLs follow it. */
    reloadCa(next: OperatingCa): void {
      use(next)
    },

    prepareDevice,

    async createDevice(req: NewDevice, actor: Actor): Promise<IssuedDevice> {
      const prepared = await prepareDevice(req, actor)
      await prepared.commit()
      log.info({ deviceId: prepared.issued.deviceId, serial: prepared.issued.serial, actor }, 'device created')
      return prepared.issued
    },

    /** Issues a batch in memory (onIssued: write each device's bundle as it is issued); see batch.ts. */
    prepareBatch: (
      req: BatchRequest,
      actor: Actor,
      onProgress?: (done: number, total: number) => void,
      onIssued?: (issued: IssuedDevice) => Promise<void>,
    ): Promise<PreparedBatch> => batch.prepare(req, actor, onProgress, onIssued),

    prepareRenewal,

    /** A new certificate for an existing device; the previous ones keep working for the overlap. */
    async renewDevice(id: string, req: RenewalRequest, actor: Actor): Promise<IssuedCertificate> {
      const prepared = await prepareRenewal(id, req, actor)
      await prepared.commit()
      return prepared.issued
    },

    /** Permanent: the device and every certificate it holds are revoked, and the CRL is reissued. */
    async revokeDevice(id: string, reason: CrlReason, actor: Actor): Promise<{ device: DeviceRecord; revokedSerials: string[] }> {
      // the CRL is signed after the commit: its key is read first, so a CA key that cannot be read changes nothing
      await signer()
      const revokedSerials = await store.transaction(async () => revokeInTransaction(id, reason, actor))
      log.info({ deviceId: id, actor, reason }, 'device revoked')
      await (await signer()).crl.refresh()
      return { device: await requireDevice(id), revokedSerials }
    },

    disableDevice: (id: string, actor: Actor): Promise<DeviceRecord> => setStatus(id, 'disabled', actor),
    enableDevice: (id: string, actor: Actor): Promise<DeviceRecord> => setStatus(id, 'active', actor),
    /** Changes a device's group, tier and labels (device.updated); see device-changes.ts. */
    updateDevice: changes.updateDevice,
    /** Disable, enable, revoke or move every device a selector matches, with dryRun and max; see device-changes.ts. */
    bulk: changes.bulk,
    /** the device's labels */
    labels: (id: string): Promise<Labels> => store.labels(id),

    async getDevice(id: string): Promise<DeviceDetails> {
      return { device: await requireDevice(assertDeviceId(id)), certificates: await store.listCertificates(id) }
    },

    listDevices: (filter?: DeviceFilter): Promise<DeviceRecord[]> => store.listDevices(filter),
    countDevices: (filter?: Omit<DeviceFilter, 'after' | 'limit'>): Promise<number> => store.countDevices(filter),
    listCertificates: (id: string): Promise<CertificateRecord[]> => store.listCertificates(id),
    listAudit: (filter?: AuditFilter): Promise<AuditEntry[]> => store.listAudit(filter),

    /** The current CRL, reissued first when a revocation is missing from it or it is half-way to nextUpdate. */
    currentCrl: async (): Promise<CrlSnapshot> => (await signer()).crl.current(),
    /** Every issuing CA's CRL (the current one first; then the previous ones, after a rotation), each reissued first if stale. */
    currentCrls: async (): Promise<CrlSnapshot[]> => (await signer()).crl.all(),
    /** The stored CRL of the issuing CA (current or previous) with this key id, reissued only when none is stored or it is half-way to nextUpdate. */
    crlByKeyId: async (keyId: string): Promise<CrlSnapshot | undefined> => (await signer()).crl.byKeyId(keyId),
  }

  async function setStatus(id: string, status: Exclude<DeviceStatus, 'revoked'>, actor: Actor): Promise<DeviceRecord> {
    await store.transaction(async () => setStatusInTransaction(id, status, actor))
    log.info({ deviceId: id, actor, status }, status === 'disabled' ? 'device disabled' : 'device enabled')
    return requireDevice(id)
  }
}

export type DeviceAuthority = ReturnType<typeof createDeviceAuthority>
