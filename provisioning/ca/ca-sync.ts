import { X509Certificate as NodeX509 } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from 'pino'
import {
  certificateToPem,
  chainPem,
  generateKeyPair,
  issueServerCertificate,
  keyAlgorithmOf,
  normalizeSerial,
  parseCertificatePem,
  privateKeyToPem,
  sleep,
  type Clock,
  type Random,
  type Timers,
} from '../../certs/index.ts'
import { dataDirLayout, type DataDirLayout } from '../data-dir/layout.ts'
import { CaSyncRefused } from '../errors.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import { CA_MATERIAL_KEY, openKeyFile, parseCaMaterial, type CaMaterial } from './ca-material.ts'
import { listPreviousIssuers, newestFirst, readCert, readKey, subjectAltNames, type CaSecrets } from './keystore.ts'
import { completePendingRotation } from './pending-rotation.ts'
import { acquireRotationLock, keepIssuer, keepPrevious, removeLeftovers, stageNext } from './rotation.ts'

export interface CaSyncDeps {
  store: Pick<RegistryStore, 'getMeta'>
  clock: Clock
  random: Random
  timers: Timers
  log: Logger
}

/**
 * On a shared registry, brings this node's data directory to the CA that the newest `ca rotate` (on any
 * machine) left in the meta row `ca.material` (ca-material.ts): the previous issuing CAs it lacks go to
 * ca/previous/<serial>/, and the new issuing CA with a server certificate of this machine's own (a new key, the
 * names of its current one) is committed through ca/next as `ca rotate` commits its own, under ca/rotate.lock.
 * Every certificate must be signed by this directory's root, and every key opens (CA sync secret) before
 * anything is written: on any failure the data directory is left as it was. Returns whether it installed.
 */
export async function installSharedCa(
  dataDir: string,
  secrets: CaSecrets & { caSyncSecret?: Uint8Array },
  deps: CaSyncDeps,
): Promise<boolean> {
  const raw = await deps.store.getMeta(CA_MATERIAL_KEY)
  if (!raw) return false
  const layout = dataDirLayout(dataDir)
  const material = parseCaMaterial(raw)
  if (known(layout).has(material.issuing.serial)) return false // installed, or older than what this node has
  const issuers = [material.issuing, ...material.previous]
  signedByRoot(layout, issuers)
  const keyFiles = new Map(issuers.map((i) => [i.serial, openKeyFile(i, secrets.caSyncSecret)]))
  const release = await rotationLock(layout, deps.timers)
  try {
    completePendingRotation(layout)
    const have = known(layout)
    if (have.has(material.issuing.serial)) return false // another process on this directory installed it meanwhile
    removeLeftovers(layout)
    const replaced = normalizeSerial(readCert(layout.issuingCert).serialNumber)
    keepPrevious(layout, replaced)
    for (const p of material.previous) if (!have.has(p.serial)) keepIssuer(layout, p.serial, p.cert, keyFiles.get(p.serial) ?? '')
    await commitIssuing(layout, material, keyFiles.get(material.issuing.serial) ?? '', secrets, deps)
    deps.log.info({ serial: material.issuing.serial, previousSerial: replaced }, 'issuing CA installed from the shared registry')
    return true
  } finally {
    release()
  }
}

/** The issuing CAs this directory holds: the current one and every kept previous one. */
function known(layout: DataDirLayout): Set<string> {
  completePendingRotation(layout)
  return new Set([normalizeSerial(readCert(layout.issuingCert).serialNumber), ...listPreviousIssuers(layout).map((p) => p.serial)])
}

/** The database is not trusted to bring a new trust anchor: each issuing CA must be this root's, with the serial it claims. */
function signedByRoot(layout: DataDirLayout, issuers: CaMaterial['issuing'][]): void {
  const root = new NodeX509(certificateToPem(readCert(layout.rootCert)))
  for (const i of issuers) {
    let cert: NodeX509
    try {
      cert = new NodeX509(i.cert)
    } catch {
      throw new CaSyncRefused(`the certificate of issuing CA ${i.serial} does not parse`)
    }
    if (!cert.checkIssued(root) || !cert.verify(root.publicKey))
      throw new CaSyncRefused(`issuing CA ${i.serial} is not signed by this node's root CA`)
    if (normalizeSerial(cert.serialNumber) !== i.serial)
      throw new CaSyncRefused(`issuing CA ${i.serial} has the serial ${normalizeSerial(cert.serialNumber)}`)
  }
}

/** Stages the new issuing CA, this machine's server certificate from it and the chain, then commits them (ca/next). */
async function commitIssuing(
  layout: DataDirLayout,
  material: CaMaterial,
  keyFile: string,
  secrets: CaSecrets,
  deps: CaSyncDeps,
): Promise<void> {
  const now = deps.clock.now().getTime()
  const issuingCert = parseCertificatePem(material.issuing.cert)
  const staging = stageNext(layout)
  staging.put('issuing.key', keyFile, 0o600)
  staging.put('issuing.crt', material.issuing.cert, 0o644)
  const issuing = { certificate: issuingCert, privateKey: await readKey(join(staging.dir, 'issuing.key'), secrets) }
  // this machine's names, from its own server certificate (made from its hostnames at every start)
  const hostnames = subjectAltNames(readCert(layout.serverCert, { firstOfChain: true }))
  const serverKeys = await generateKeyPair(keyAlgorithmOf(issuing.privateKey))
  const server = await issueServerCertificate(issuing, { hostnames, publicKey: serverKeys.publicKey }, deps)
  const previous = listPreviousIssuers(layout)
    .map((p) => p.certificate)
    .filter((c) => normalizeSerial(c.serialNumber) !== material.issuing.serial && c.notAfter.getTime() > now)
    .sort(newestFirst)
  staging.put('ca.pem', chainPem([issuingCert, ...previous, readCert(layout.rootCert)]), 0o644)
  staging.put('server.key', await privateKeyToPem(serverKeys.privateKey, secrets.passphrase), 0o600)
  staging.put('server.crt', certificateToPem(server) + material.issuing.cert, 0o644)
  staging.commit()
}

/** ca/rotate.lock, waiting (up to 10 s) while another process on this directory (a worker) holds it. */
async function rotationLock(layout: DataDirLayout, timers: Timers): Promise<() => void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return acquireRotationLock(layout)
    } catch (err) {
      if ((err as { code?: string }).code !== 'GH_CA_ROTATION_IN_PROGRESS' || attempt >= 100) throw err
      await sleep(timers, 100)
    }
  }
}
