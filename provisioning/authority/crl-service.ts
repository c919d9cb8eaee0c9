import type { Logger } from 'pino'
import { createCrl, crlToDer, crlToPem, type CertificateAuthority, type Clock } from '../../certs/index.ts'
import type { RegistryStore } from '../store/registry-store.ts'

export interface CrlSnapshot {
  pem: string
  der: Uint8Array
  crlNumber: number
  thisUpdate: Date
  nextUpdate: Date
  entries: number
}

const META = { pem: 'crl.pem', number: 'crl.number', entries: 'crl.entries', thisUpdate: 'crl.thisUpdate', nextUpdate: 'crl.nextUpdate' }

/**
 * The CRL is for relying parties; Gatehouse itself enforces revocation from the registry, so a stale
 * CRL can never lock the fleet out. It is reissued after every revocation and whenever it is half-way
 * to its nextUpdate, and kept in the registry (meta table) so every process serves the same one.
 */
export function createCrlService(deps: { store: RegistryStore; ca: CertificateAuthority; clock: Clock; log: Logger }, validHours = 7 * 24) {
  const { store, ca, clock, log } = deps

  function stored(): CrlSnapshot | undefined {
    const pem = store.getMeta(META.pem)
    if (pem === undefined) return undefined
    return {
      pem,
      der: pemToDer(pem),
      crlNumber: Number(store.getMeta(META.number)),
      thisUpdate: new Date(String(store.getMeta(META.thisUpdate))),
      nextUpdate: new Date(String(store.getMeta(META.nextUpdate))),
      entries: Number(store.getMeta(META.entries)),
    }
  }

  async function refresh(): Promise<CrlSnapshot> {
    const revoked = store.listRevokedCertificates()
    const crlNumber = Number(store.getMeta(META.number) ?? '0') + 1
    const crl = await createCrl(
      ca.issuing,
      {
        entries: revoked.map((c) => ({ serial: c.serial, revokedAt: c.revokedAt ?? c.createdAt, reason: c.revocationReason ?? 'unspecified' })),
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
    }
    store.transaction(() => {
      // Another process may have issued a newer CRL meanwhile: never go backwards in number.
      if (Number(store.getMeta(META.number) ?? '0') >= crlNumber) return
      store.setMeta(META.pem, pem)
      store.setMeta(META.number, String(crlNumber))
      store.setMeta(META.entries, String(revoked.length))
      store.setMeta(META.thisUpdate, snapshot.thisUpdate.toISOString())
      store.setMeta(META.nextUpdate, snapshot.nextUpdate.toISOString())
    })
    log.info({ crlNumber, entries: revoked.length }, 'CRL issued')
    return stored() ?? snapshot
  }

  async function current(): Promise<CrlSnapshot> {
    const crl = stored()
    if (!crl) return refresh()
    const now = clock.now().getTime()
    const halfway = crl.thisUpdate.getTime() + (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2
    if (crl.entries !== store.listRevokedCertificates().length || now >= halfway) return refresh()
    return crl
  }

  return { current, refresh }
}

function pemToDer(pem: string): Uint8Array {
  const b64 = pem.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, '')
  return new Uint8Array(Buffer.from(b64, 'base64'))
}
