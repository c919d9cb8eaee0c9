import { existsSync } from 'node:fs'
import {
  certificateFingerprint,
  cryptoRandom,
  normalizeSerial,
  systemClock,
  type KeyAlgorithm,
  type X509Certificate,
} from '../../certs/index.ts'
import { CaNotInitialized, CaSyncSecretMissing } from '../errors.ts'
import { listPreviousIssuers, newestFirst, readCert, readKeyFile } from './keystore.ts'
import { needsSecret, sealCaMaterial } from './ca-material.ts'
import { rotateIssuingCa, type RotationResult } from './rotation.ts'
import { originOf, planRotation, recordInterruptedRotation, recordRotation } from './rotation-journal.ts'
import { dataDirLayout } from '../data-dir/layout.ts'
import { completePendingRotation } from './pending-rotation.ts'
import type { ControlPlaneDeps } from '../control-plane.ts'
import { openRegistry } from '../store/open-registry.ts'

/** A CA certificate as `gatehouse ca show|rotate` report it (dates ISO). */
export interface CaCertificateInfo {
  subject: string
  serial: string
  fingerprint: string
  notBefore: string
  notAfter: string
  /** at the time of asking */
  status: 'valid' | 'expired' | 'not-yet-valid'
}

export interface CaOverview {
  root: CaCertificateInfo
  issuing: CaCertificateInfo
  /** issuing CAs replaced by rotations, newest first; the valid ones are in the trust bundle and sign CRLs */
  previous: CaCertificateInfo[]
  paths: { chain: string; issuingCert: string; rootCert: string; previousDir: string }
}

export interface CaRotationSummary {
  issuing: CaCertificateInfo
  previous: CaCertificateInfo
  serverCertificate: { serial: string; notAfter: string }
  paths: { issuingCert: string; issuingKey: string; chain: string; previous: string; serverCert: string; serverKey: string }
}

async function info(cert: X509Certificate, now: Date): Promise<CaCertificateInfo> {
  const t = now.getTime()
  return {
    subject: cert.subject,
    serial: normalizeSerial(cert.serialNumber),
    fingerprint: await certificateFingerprint(cert),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    status: t < cert.notBefore.getTime() ? 'not-yet-valid' : t >= cert.notAfter.getTime() ? 'expired' : 'valid',
  }
}

/** The CA's certificates (no keys, so no passphrase needed). A rotation left half-moved is completed first. */
export async function describeCa(dataDir: string, deps: Pick<ControlPlaneDeps, 'clock'> = {}): Promise<CaOverview> {
  const now = (deps.clock ?? systemClock).now()
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir)
  completePendingRotation(layout)
  const issuing = readCert(layout.issuingCert)
  const previous = listPreviousIssuers(layout)
    .map((p) => p.certificate)
    .filter((c) => c.serialNumber !== issuing.serialNumber)
    .sort(newestFirst)
  return {
    root: await info(readCert(layout.rootCert), now),
    issuing: await info(issuing, now),
    previous: await Promise.all(previous.map((c) => info(c, now))),
    paths: { chain: layout.chain, issuingCert: layout.issuingCert, rootCert: layout.rootCert, previousDir: layout.previousDir },
  }
}

/**
 * `gatehouse ca show`: the registry is opened first, as by every other command, so a rotation a killed
 * `ca rotate` left planned is settled (ca/rotation-journal.ts) before the CA is described.
 */
export async function showCa(dataDir: string, deps: Pick<ControlPlaneDeps, 'clock' | 'log' | 'databaseUrl'>): Promise<CaOverview> {
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir)
  if (deps.databaseUrl !== undefined || existsSync(layout.database)) {
    const store = await openRegistry(layout.database, deps.databaseUrl)
    try {
      await recordInterruptedRotation(store, layout, { clock: deps.clock ?? systemClock, log: deps.log })
    } finally {
      await store.close()
    }
  }
  return describeCa(dataDir, deps)
}

/**
 * `gatehouse ca rotate`: a new issuing CA (ca/rotation.ts) with its audit entry `ca.rotated` and event
 * `{ type: 'ca.rotated', serial }` (a running `gatehouse start` reloads its CA on it), journaled in the
 * registry (ca/rotation-journal.ts) so that a crash at any point leaves no rotation on disk without its
 * audit entry: a rotation another process left half recorded is settled first.
 */
export async function rotateCa(
  dataDir: string,
  options: { keyAlgorithm?: KeyAlgorithm },
  deps: ControlPlaneDeps,
  actor: string,
): Promise<CaRotationSummary> {
  const clock = deps.clock ?? systemClock
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir) // before the registry is opened (or made)
  // a shared registry carries the new CA to every node (ca-material.ts): its key sealed with the CA sync secret
  const shared = deps.databaseUrl !== undefined
  if (shared && !deps.caSyncSecret && needsSecret([readKeyFile(layout.issuingKey)]))
    throw new CaSyncSecretMissing('ca rotate on a shared registry (PostgreSQL)', 'nothing was changed')
  const random = deps.random ?? cryptoRandom
  const store = await openRegistry(layout.database, deps.databaseUrl)
  let result: RotationResult
  try {
    await recordInterruptedRotation(store, layout, { clock, log: deps.log })
    result = await rotateIssuingCa(
      dataDir,
      {
        ...(deps.passphrase !== undefined && { passphrase: deps.passphrase }),
        ...(deps.pkcs11Pin !== undefined && { pkcs11Pin: deps.pkcs11Pin }),
        ...(options.keyAlgorithm && { keyAlgorithm: options.keyAlgorithm }),
      },
      { clock, random },
      {
        plan: (rotation, issuers) =>
          planRotation(store, {
            ...rotation,
            actor,
            at: clock.now().toISOString(),
            // on SQLite the registry is in the data directory: the plan has no other origin
            ...(shared && {
              origin: originOf(layout),
              material: sealCaMaterial(issuers.issuing, issuers.previous, deps.caSyncSecret, random),
            }),
          }),
        record: () => recordRotation(store, clock),
      },
    )
  } finally {
    await store.close()
  }
  const now = clock.now()
  const summary: CaRotationSummary = {
    issuing: await info(result.issuing, now),
    previous: await info(result.replaced, now),
    serverCertificate: {
      serial: normalizeSerial(result.serverCertificate.serialNumber),
      notAfter: result.serverCertificate.notAfter.toISOString(),
    },
    paths: result.paths,
  }
  deps.log.info({ serial: summary.issuing.serial, previousSerial: summary.previous.serial, actor }, 'issuing CA rotated')
  return summary
}
