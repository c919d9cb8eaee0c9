import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import {
  chainPem,
  certificateToPem,
  generateKeyPair,
  issueIssuingCa,
  issueServerCertificate,
  keyAlgorithmOf,
  normalizeSerial,
  privateKeyToPem,
  type IssuerKeyPair,
  type KeyAlgorithm,
  type OperatingCa,
  type X509Certificate,
} from '../../certs/index.ts'
import { CaRotationInProgress } from '../errors.ts'
import { fsyncDir, writeFileAtomic } from '../data-dir/atomic-file.ts'
import {
  labelStamp,
  loadCa,
  loadRootKey,
  newCaKeyPair,
  readCert,
  subjectAltNames,
  tokenOfKeyFile,
  type CaKeystoreDeps,
  type CaSecrets,
} from './keystore.ts'
import { dataDirLayout, type DataDirLayout } from '../data-dir/layout.ts'
import { completePendingRotation } from './pending-rotation.ts'
import type { CaIssuerFiles } from './ca-material.ts'

export interface RotateOptions extends CaSecrets {
  /** the CA passphrase: opens the root key, and encrypts the new keys at rest */
  passphrase?: string
  /** the user PIN of the PKCS#11 token, when the CA keys are in one: the new issuing key is made there too */
  pkcs11Pin?: string
  /** default: the algorithm of the current issuing CA key */
  keyAlgorithm?: KeyAlgorithm
}

/**
 * The registry's side of a rotation (rotation-journal.ts), called under the rotation lock: plan before the
 * commit point, record once the files are in place.
 */
export interface RotationJournal {
  /** `issuers`: the new issuing CA and the previous ones still valid, as their files (ca-material.ts) */
  plan(
    rotation: { serial: string; previousSerial: string; notAfter: string; serverSerial: string },
    issuers: { issuing: CaIssuerFiles; previous: CaIssuerFiles[] },
  ): Promise<void>
  record(): Promise<void>
}

export interface RotationResult {
  /** the CA as loaded after the rotation: the new issuing CA, the previous ones, the root */
  ca: OperatingCa & { previous: IssuerKeyPair[] }
  issuing: X509Certificate
  replaced: X509Certificate
  serverCertificate: X509Certificate
  paths: { issuingCert: string; issuingKey: string; chain: string; previous: string; serverCert: string; serverKey: string }
}

/**
 * Replaces the issuing CA with a new one signed by the root, keeps the old one under
 * ca/previous/<serial>/ (certificates it issued keep working; it still signs their CRL), rewrites
 * ca/ca.pem (new issuing + previous issuing CAs not yet expired + root) and reissues the broker's
 * server certificate (same names) from the new CA. One rotation at a time (ca/rotate.lock).
 *
 * Crash safety: every file is written to a temporary name, fsynced and renamed; directories are fsynced.
 *  1. ca/previous/<old serial>/ is built as <serial>.partial-<pid> and renamed into place. A crash before
 *     the rename leaves an ignored .partial directory; after it, a copy of the current issuing CA, which
 *     loadCa skips (same serial as the current one). Nothing else has changed: the old CA stays in use.
 *  2. The new issuing.crt/.key, ca.pem, server.crt/.key are staged in ca/next.partial-<pid> and the
 *     directory is renamed to ca/next: the commit point. A crash before it changes nothing (the next
 *     rotation removes the leftover); after it, the rotation is decided.
 *  3. The files in ca/next are renamed over the live ones (keys before certificates) and ca/next is
 *     removed (pending-rotation.ts). A crash in between leaves ca/next holding what is not yet moved;
 *     loadCa, loadServerTls and the next rotation complete it before they read, so the next start (or
 *     CLI command) sees the whole new CA, never a certificate beside a key of another CA.
 * The registry (audit + event) is the journal's: its plan is written before step 2, its record after step 3,
 * both under the lock, so a crash at any point leaves a plan the next open settles (rotation-journal.ts).
 */
export async function rotateIssuingCa(
  dataDir: string,
  options: RotateOptions,
  deps: CaKeystoreDeps,
  journal?: RotationJournal,
): Promise<RotationResult> {
  const layout = dataDirLayout(dataDir)
  const current = await loadCa(dataDir, options, deps.clock) // also completes a pending rotation and proves the passphrase or PIN
  const root = await loadRootKey(dataDir, options) // the one place the root key is opened
  const release = acquireRotationLock(layout)
  try {
    removeLeftovers(layout)
    // another rotation may have finished between the load and the lock: start from what is on disk now
    const ca = await loadCa(dataDir, options, deps.clock)
    if (ca.issuing.certificate.serialNumber !== current.issuing.certificate.serialNumber)
      throw new CaRotationInProgress(layout.rotationLock, 'another process')
    const now = deps.clock.now()
    const alg = options.keyAlgorithm ?? keyAlgorithmOf(ca.issuing.privateKey)
    // the new issuing key goes where the current one is: the same PKCS#11 token, else a key file
    const token = await tokenOfKeyFile(layout.issuingKey, options)
    const [newIssuing, serverKeys] = await Promise.all([
      newCaKeyPair(token, alg, `gatehouse-issuing-${labelStamp(now)}`, options.passphrase),
      generateKeyPair(alg),
    ])
    const issuingKeys = newIssuing.keys
    const issuing = await issueIssuingCa(
      root,
      {
        commonName: ca.issuing.certificate.subjectName.getField('CN')[0] ?? 'Gatehouse Issuing CA',
        subjectSerialNumber: now.toISOString().replace(/[-:]|\.\d+/g, ''), // 20261128T130012Z: tells issuing CAs apart by name
        keys: issuingKeys,
      },
      deps,
    )
    const hostnames = existsSync(layout.serverCert) ? subjectAltNames(readCert(layout.serverCert, { firstOfChain: true })) : []
    const server = await issueServerCertificate(issuing, { hostnames, publicKey: serverKeys.publicKey }, deps)
    const stillValid = [ca.issuing, ...ca.previous].filter((p) => p.certificate.notAfter.getTime() > now.getTime())

    // 1. keep the replaced issuing CA
    const replacedSerial = normalizeSerial(ca.issuing.certificate.serialNumber)
    keepPrevious(layout, replacedSerial)
    const serial = normalizeSerial(issuing.certificate.serialNumber)
    const kept = (cert: X509Certificate): CaIssuerFiles => {
      const s = normalizeSerial(cert.serialNumber)
      return { serial: s, cert: certificateToPem(cert), keyFile: readFileSync(join(layout.previousDir, s, 'issuing.key'), 'utf8') }
    }
    await journal?.plan(
      {
        serial,
        previousSerial: replacedSerial,
        notAfter: issuing.certificate.notAfter.toISOString(),
        serverSerial: normalizeSerial(server.serialNumber),
      },
      {
        issuing: { serial, cert: certificateToPem(issuing.certificate), keyFile: newIssuing.keyFile },
        previous: stillValid.map((p) => kept(p.certificate)),
      },
    )

    // 2. stage everything new, then commit by renaming the staging directory to ca/next
    const staging = stageNext(layout)
    staging.put('issuing.key', newIssuing.keyFile, 0o600)
    staging.put('issuing.crt', certificateToPem(issuing.certificate), 0o644)
    staging.put('ca.pem', chainPem({ root: ca.root, issuing, previous: stillValid }), 0o644)
    staging.put('server.key', await privateKeyToPem(serverKeys.privateKey, options.passphrase), 0o600)
    staging.put('server.crt', certificateToPem(server) + certificateToPem(issuing.certificate), 0o644)
    // 3. commit, and move the new files into place
    staging.commit()
    await journal?.record()
  } finally {
    release()
  }
  const after = await loadCa(dataDir, options, deps.clock)
  return {
    ca: after,
    issuing: after.issuing.certificate,
    replaced: current.issuing.certificate,
    serverCertificate: readCert(layout.serverCert, { firstOfChain: true }),
    paths: {
      issuingCert: layout.issuingCert,
      issuingKey: layout.issuingKey,
      chain: layout.chain,
      previous: join(layout.previousDir, normalizeSerial(current.issuing.certificate.serialNumber)),
      serverCert: layout.serverCert,
      serverKey: layout.serverKey,
    },
  }
}

/** Copies the live issuing.crt/.key (the key as stored: encrypted when it is) to ca/previous/<serial>/. */
export function keepPrevious(layout: DataDirLayout, serial: string): void {
  keepIssuer(layout, serial, readFileSync(layout.issuingCert), readFileSync(layout.issuingKey))
}

/** Writes ca/previous/<serial>/{issuing.crt,issuing.key} through a staging directory renamed into place. */
export function keepIssuer(layout: DataDirLayout, serial: string, cert: string | Uint8Array, keyFile: string | Uint8Array): void {
  const target = join(layout.previousDir, serial)
  if (existsSync(target)) return // an earlier attempt kept it already
  mkdirSync(layout.previousDir, { recursive: true, mode: 0o700 })
  const staging = `${target}.partial-${process.pid}`
  mkdirSync(staging, { mode: 0o700 })
  writeFileAtomic(join(staging, 'issuing.crt'), cert, 0o644)
  writeFileAtomic(join(staging, 'issuing.key'), keyFile, 0o600)
  renameSync(staging, target)
  fsyncDir(layout.previousDir)
}

/**
 * ca/next.partial-<pid>: files are put there (each written atomically with its mode); commit() renames it to
 * ca/next (the commit point) and moves its files into place (pending-rotation.ts).
 */
export function stageNext(layout: DataDirLayout): { dir: string; put(name: string, data: string, mode: number): void; commit(): void } {
  const dir = `${layout.pendingRotation}.partial-${process.pid}`
  mkdirSync(dir, { mode: 0o700 })
  return {
    dir,
    put: (name, data, mode) => writeFileAtomic(join(dir, name), data, mode),
    commit() {
      renameSync(dir, layout.pendingRotation)
      fsyncDir(layout.caDir)
      completePendingRotation(layout)
    },
  }
}

/** Staging directories of interrupted rotations (never read by anyone): safe to remove under the lock. */
export function removeLeftovers(layout: DataDirLayout): void {
  const staged = (dir: string, prefix: string) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => n.startsWith(prefix) && n.includes('.partial-'))
          .map((n) => join(dir, n))
      : []
  for (const dir of [...staged(layout.caDir, 'next.partial-'), ...staged(layout.previousDir, '')])
    rmSync(dir, { recursive: true, force: true })
}

/**
 * ca/rotate.lock, created exclusively with our pid. A lock whose process is gone (a crashed rotation)
 * is taken over; a live one refuses with GH_CA_ROTATION_IN_PROGRESS.
 */
export function acquireRotationLock(layout: DataDirLayout): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(layout.rotationLock, 'wx', 0o600)
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => rmSync(layout.rotationLock, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(layout.rotationLock, 'utf8').trim())
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid))
        throw new CaRotationInProgress(layout.rotationLock, `pid ${pid}`)
      if (pid === process.pid) throw new CaRotationInProgress(layout.rotationLock, 'this process')
      rmSync(layout.rotationLock, { force: true })
    }
  }
  throw new CaRotationInProgress(layout.rotationLock, 'another process')
}

/** Whether a live process (this one included) holds ca/rotate.lock: its rotation is not finished yet. */
export function rotationInProgress(layout: DataDirLayout): boolean {
  let pid: number
  try {
    pid = Number(readFileSync(layout.rotationLock, 'utf8').trim())
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
  return Number.isSafeInteger(pid) && pid > 0 && (pid === process.pid || isAlive(pid))
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
