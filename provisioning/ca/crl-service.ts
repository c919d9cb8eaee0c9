import type { Logger } from 'pino'
import {
  createCrl,
  crlToDer,
  crlToPem,
  isIssuedBy,
  issuerKeyId,
  normalizeSerial,
  parseCertificatePem,
  type OperatingCa,
  type Clock,
  type IssuerKeyPair,
} from '../../certs/index.ts'
import type { ClaimRecord } from '../store/claim-store.ts'
import type { CertificateRecord, RegistryStore } from '../store/registry-store.ts'

export interface CrlSnapshot {
  pem: string
  der: Uint8Array
  crlNumber: number
  thisUpdate: Date
  nextUpdate: Date
  entries: number
  /** serial (hex) of the issuing CA that signed this CRL */
  issuerSerial: string
  /** its subject DN */
  issuer: string
}

/** A CRL's key id is lowercase hex (issuerKeyId); anything else names no CRL. */
const KEY_ID = /^[0-9a-f]{2,128}$/

/** Registry meta keys of one issuer's CRL. The legacy single-CA `crl.number` only seeds the numbering. */
const metaKey = (issuerSerial: string, field: 'pem' | 'number' | 'entries' | 'thisUpdate' | 'nextUpdate') => `crl.${issuerSerial}.${field}`
const LEGACY_NUMBER = 'crl.number'

/** When the stored CRL of this issuer is due for replacement (undefined: none issued yet). */
export async function storedCrlNextUpdate(store: Pick<RegistryStore, 'getMeta'>, issuerSerial: string): Promise<Date | undefined> {
  const at = await store.getMeta(metaKey(issuerSerial, 'nextUpdate'))
  return at === undefined ? undefined : new Date(at)
}

/**
 * One CRL per issuing CA: the current one and each previous one that has not expired (after a
 * rotation) signs the entries for the certificates it issued, told apart by the stored certificate's
 * authority key identifier. The CRLs are for relying parties; Gatehouse itself enforces revocation from
 * the registry, so a stale CRL can never lock the fleet out. Each is reissued after every revocation and
 * whenever it is half-way to its nextUpdate, and kept in the registry (meta table) so every process
 * serves the same one. CRL numbers only grow, per issuer.
 */
/** A revoked certificate as a CRL lists it: a device certificate, or a revoked claim's certificate. */
type RevokedEntry = Pick<CertificateRecord, 'serial' | 'pem' | 'revokedAt' | 'createdAt' | 'revocationReason'>

/** A revoked claim's certificate; a claim made before its certificate was kept (pem null) cannot be attributed. */
function claimEntry(c: ClaimRecord): RevokedEntry | null {
  if (c.certificatePem === null) return null
  return {
    serial: c.serial,
    pem: c.certificatePem,
    revokedAt: c.revokedAt,
    createdAt: c.createdAt,
    revocationReason: 'cessationOfOperation',
  }
}

export function createCrlService(
  deps: {
    store: RegistryStore
    ca: OperatingCa
    clock: Clock
    log: Logger
    claims?: { list(): Promise<ClaimRecord[]> }
    /** the apps' revoked certificates (the AppStore) */
    apps?: { revokedCertificates(): Promise<Omit<RevokedEntry, 'revocationReason'>[]> }
  },
  validHours = 7 * 24,
) {
  const { store, ca, clock, log } = deps
  const withSerial = (pair: IssuerKeyPair) => ({ pair, serial: normalizeSerial(pair.certificate.serialNumber) })
  // read when a CRL is first asked for: a command that needs none never parses the CA certificates (issue 14)
  let known: { pair: IssuerKeyPair; serial: string }[] | undefined
  const issuerList = () => {
    known ??= [withSerial(ca.issuing), ...(ca.previous ?? []).map(withSerial)]
    return known
  }
  const currentIssuer = () => issuerList()[0] as { pair: IssuerKeyPair; serial: string }
  /** certificate serial -> the serial of the issuer that signed it (null: none of ours, e.g. an expired CA) */
  const issuerOf = new Map<string, string | null>()

  function attribute(c: RevokedEntry): string | null {
    let found = issuerOf.get(c.serial)
    if (found !== undefined) return found
    try {
      const cert = parseCertificatePem(c.pem)
      found = issuerList().find((i) => isIssuedBy(cert, i.pair.certificate))?.serial ?? null
    } catch (err) {
      log.warn({ err, serial: c.serial }, 'stored certificate unreadable; left off the CRLs')
      found = null
    }
    issuerOf.set(c.serial, found)
    return found
  }

  /** Revoked device certificates, revoked claims' and apps' certificates (all issued by the issuing CA). */
  async function revokedBy(issuerSerial: string): Promise<RevokedEntry[]> {
    const apps = ((await deps.apps?.revokedCertificates()) ?? []).map((c) => ({ ...c, revocationReason: 'cessationOfOperation' as const }))
    const claims = ((await deps.claims?.list()) ?? [])
      .filter((c) => c.status === 'revoked')
      .map(claimEntry)
      .filter((e) => e !== null)
    return [...(await store.listRevokedCertificates()), ...claims, ...apps].filter((c) => attribute(c) === issuerSerial)
  }

  async function stored(issuer: { pair: IssuerKeyPair; serial: string }): Promise<CrlSnapshot | undefined> {
    const pem = await store.getMeta(metaKey(issuer.serial, 'pem'))
    if (pem === undefined) return undefined
    return {
      pem,
      der: pemToDer(pem),
      crlNumber: Number(await store.getMeta(metaKey(issuer.serial, 'number'))),
      thisUpdate: new Date(String(await store.getMeta(metaKey(issuer.serial, 'thisUpdate')))),
      nextUpdate: new Date(String(await store.getMeta(metaKey(issuer.serial, 'nextUpdate')))),
      entries: Number(await store.getMeta(metaKey(issuer.serial, 'entries'))),
      issuerSerial: issuer.serial,
      issuer: issuer.pair.certificate.subject,
    }
  }

  async function lastNumber(issuerSerial: string): Promise<number> {
    return Number((await store.getMeta(metaKey(issuerSerial, 'number'))) ?? (await store.getMeta(LEGACY_NUMBER)) ?? '0')
  }

  async function refreshOne(issuer: { pair: IssuerKeyPair; serial: string }): Promise<CrlSnapshot> {
    const revoked = await revokedBy(issuer.serial)
    const crlNumber = (await lastNumber(issuer.serial)) + 1
    const crl = await createCrl(
      issuer.pair,
      {
        entries: revoked.map((c) => ({
          serial: c.serial,
          revokedAt: c.revokedAt ?? c.createdAt,
          reason: c.revocationReason ?? 'unspecified',
        })),
        crlNumber,
        validHours,
      },
      { clock },
    )
    const pem = crlToPem(crl)
    const snapshot: CrlSnapshot = {
      pem,
      der: crlToDer(crl),
      crlNumber,
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate ?? new Date(crl.thisUpdate.getTime() + validHours * 3600_000),
      entries: revoked.length,
      issuerSerial: issuer.serial,
      issuer: issuer.pair.certificate.subject,
    }
    await store.transaction(async () => {
      // Another process may have issued a newer CRL meanwhile: never go backwards in number.
      if ((await lastNumber(issuer.serial)) >= crlNumber) return
      await store.setMeta(metaKey(issuer.serial, 'pem'), pem)
      await store.setMeta(metaKey(issuer.serial, 'number'), String(crlNumber))
      await store.setMeta(metaKey(issuer.serial, 'entries'), String(revoked.length))
      await store.setMeta(metaKey(issuer.serial, 'thisUpdate'), snapshot.thisUpdate.toISOString())
      await store.setMeta(metaKey(issuer.serial, 'nextUpdate'), snapshot.nextUpdate.toISOString())
    })
    log.info({ crlNumber, entries: revoked.length, issuerSerial: issuer.serial }, 'CRL issued')
    return (await stored(issuer)) ?? snapshot
  }

  /**
   * A read's reissue of a CRL half-way to its nextUpdate: when it cannot be stored (a full or locked disk), the
   * stored one is served instead as long as it is still valid and lists every revocation; a CRL that misses
   * one, or has expired, is never served: the read fails with the store's code.
   */
  async function reissuedOr(issuer: { pair: IssuerKeyPair; serial: string }, crl: CrlSnapshot | undefined): Promise<CrlSnapshot> {
    try {
      return await refreshOne(issuer)
    } catch (err) {
      if (crl === undefined || clock.now().getTime() >= crl.nextUpdate.getTime()) throw err
      if (crl.entries !== (await revokedBy(issuer.serial)).length) throw err
      log.warn(
        { err, code: (err as { code?: string }).code, issuerSerial: issuer.serial, nextUpdate: crl.nextUpdate.toISOString() },
        'CRL not reissued: the stored one, still valid and complete, is served',
      )
      return crl
    }
  }

  async function currentOf(issuer: { pair: IssuerKeyPair; serial: string }): Promise<CrlSnapshot> {
    const crl = await stored(issuer)
    if (!crl) return refreshOne(issuer)
    const now = clock.now().getTime()
    const halfway = crl.thisUpdate.getTime() + (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2
    if (crl.entries !== (await revokedBy(issuer.serial)).length || now >= halfway) return reissuedOr(issuer, crl)
    return crl
  }

  let byKey: Promise<Map<string, { pair: IssuerKeyPair; serial: string }>> | undefined
  const keyIndex = () => {
    byKey ??= Promise.all(issuerList().map(async (i) => [await issuerKeyId(i.pair.certificate), i] as const)).then(
      (pairs) => new Map(pairs),
    )
    return byKey
  }
  /** One reissue per issuer at a time: concurrent fetches of a stale CRL share it. */
  const reissuing = new Map<string, Promise<CrlSnapshot>>()

  /**
   * The stored CRL of an issuer, by key id, for GET /crl/<key id>.crl: read from the registry (no scan
   * of the revocations per request); reissued only when none is stored or it is half-way to nextUpdate.
   * A revocation reissues it where it happens (revokeDevice here, the change feed for other processes).
   */
  async function byKeyId(keyId: string): Promise<CrlSnapshot | undefined> {
    if (!KEY_ID.test(keyId)) return undefined
    const issuer = (await keyIndex()).get(keyId)
    if (issuer === undefined) return undefined
    const crl = await stored(issuer)
    const now = clock.now().getTime()
    if (crl && now < crl.thisUpdate.getTime() + (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2) return crl
    let pending = reissuing.get(issuer.serial)
    if (pending === undefined) {
      pending = reissuedOr(issuer, crl).finally(() => reissuing.delete(issuer.serial))
      reissuing.set(issuer.serial, pending)
    }
    return pending
  }

  /** One after the other: each reads and bumps its own number in the registry. */
  async function each(fn: (issuer: { pair: IssuerKeyPair; serial: string }) => Promise<CrlSnapshot>): Promise<CrlSnapshot[]> {
    const out: CrlSnapshot[] = []
    for (const issuer of issuerList()) out.push(await fn(issuer))
    return out
  }

  return {
    /** the current issuing CA's CRL, reissued first if stale */
    current: async (): Promise<CrlSnapshot> => currentOf(currentIssuer()),
    /** every issuer's CRL, the current issuing CA's first, each reissued first if stale */
    all: (): Promise<CrlSnapshot[]> => each(currentOf),
    byKeyId,
    /** reissues every CRL now; returns the current issuing CA's */
    refresh: async (): Promise<CrlSnapshot> => {
      const first = await refreshOne(currentIssuer())
      for (const older of issuerList().slice(1)) await refreshOne(older)
      return first
    },
  }
}

function pemToDer(pem: string): Uint8Array {
  const b64 = pem.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, '')
  return new Uint8Array(Buffer.from(b64, 'base64'))
}
