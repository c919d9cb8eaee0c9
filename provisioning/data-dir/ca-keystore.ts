import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import {
  certificateToPem,
  chainPem,
  createCertificateAuthority,
  generateKeyPair,
  issueServerCertificate,
  parseCertificatePem,
  parseCertificatesPem,
  privateKeyFromPem,
  privateKeyToPem,
  type CertificateAuthority,
  type Clock,
  type CryptoKey,
  type KeyAlgorithm,
  type Random,
  type X509Certificate,
} from '../../certs/index.ts'
import {
  CaKeyPermissions,
  CaKeyUnreadable,
  CaNotInitialized,
  CaPassphraseRequired,
  CaPassphraseWrong,
  DataDirUnusable,
} from '../errors.ts'
import { fsyncDir, writeFileAtomic } from './atomic-file.ts'
import { dataDirLayout, type DataDirLayout } from './layout.ts'

export interface CaKeystoreDeps {
  clock: Clock
  random: Random
}

export interface InitOptions {
  /** Encrypts the CA and server keys at rest (PKCS#8, AES-256) when set. */
  passphrase?: string
  keyAlgorithm?: KeyAlgorithm
  hostnames?: string[]
  caName?: string
}

export interface InitResult {
  createdCa: boolean
  serverCertIssued: boolean
  layout: DataDirLayout
  ca: CertificateAuthority
}

/**
 * Creates the data directory, the CA (root + issuing) and the broker's server certificate on first
 * use. Idempotent: an existing CA is loaded (which proves the passphrase) and never replaced. The
 * server certificate is reissued only when the requested hostnames are not all in it.
 */
export async function initDataDir(dataDir: string, options: InitOptions, deps: CaKeystoreDeps): Promise<InitResult> {
  const layout = dataDirLayout(dataDir)
  ensurePrivateDir(layout.root)
  let createdCa = false
  let ca: CertificateAuthority
  if (existsSync(layout.caDir)) {
    ca = await loadCa(dataDir, options.passphrase)
  } else {
    ca = await createCertificateAuthority(
      { name: options.caName ?? 'Gatehouse', keyAlgorithm: options.keyAlgorithm ?? 'p256' },
      deps,
    )
    await writeCaAtomically(layout, ca, options.passphrase)
    createdCa = true
  }
  const serverCertIssued = await ensureServerCertificate(layout, ca, options, deps)
  return { createdCa, serverCertIssued, layout, ca }
}

/** Loads the CA; every failure is a coded error that says what to do, and nothing is changed. */
export async function loadCa(dataDir: string, passphrase?: string): Promise<CertificateAuthority> {
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir)
  const root = readCert(layout.rootCert)
  const issuing = readCert(layout.issuingCert)
  return {
    root: { certificate: root, privateKey: await readKey(layout.rootKey, passphrase) },
    issuing: { certificate: issuing, privateKey: await readKey(layout.issuingKey, passphrase) },
  }
}

export interface ServerTlsMaterial {
  key: string
  /** the server certificate followed by the issuing CA certificate */
  cert: string
  /** the chain that client certificates are verified against */
  ca: string
}

/** The broker's TLS material, with the same permission and passphrase checks as the CA keys. */
export async function loadServerTls(dataDir: string, passphrase?: string): Promise<ServerTlsMaterial> {
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.serverCert)) throw new CaNotInitialized(dataDir, dataDir)
  const keyPem = readKeyFile(layout.serverKey)
  const key = await openKey(layout.serverKey, keyPem, passphrase)
  return {
    key: await privateKeyToPem(key),
    cert: readFileSync(layout.serverCert, 'utf8'),
    ca: readFileSync(layout.chain, 'utf8'),
  }
}

function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new DataDirUnusable(dir, (err as Error).message, { cause: err })
  }
}

async function writeCaAtomically(layout: DataDirLayout, ca: CertificateAuthority, passphrase?: string): Promise<void> {
  // Build the whole ca/ directory beside its final place, then rename it in: an interrupted init
  // leaves no half-made CA that a later start would trust.
  const staging = `${layout.caDir}.partial-${process.pid}`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { mode: 0o700 })
  const file = (p: string) => join(staging, basename(p))
  writeFileAtomic(file(layout.rootCert), certificateToPem(ca.root.certificate), 0o644)
  writeFileAtomic(file(layout.issuingCert), certificateToPem(ca.issuing.certificate), 0o644)
  writeFileAtomic(file(layout.chain), chainPem(ca), 0o644)
  writeFileAtomic(file(layout.rootKey), await privateKeyToPem(ca.root.privateKey, passphrase), 0o600)
  writeFileAtomic(file(layout.issuingKey), await privateKeyToPem(ca.issuing.privateKey, passphrase), 0o600)
  renameSync(staging, layout.caDir)
  fsyncDir(layout.root)
}

async function ensureServerCertificate(
  layout: DataDirLayout,
  ca: CertificateAuthority,
  options: InitOptions,
  deps: CaKeystoreDeps,
): Promise<boolean> {
  const wanted = options.hostnames ?? []
  if (existsSync(layout.serverCert)) {
    const current = readCert(layout.serverCert, { firstOfChain: true })
    const names = new Set(subjectAltNames(current))
    const stillValid = current.notAfter.getTime() > deps.clock.now().getTime()
    if (stillValid && wanted.every((h) => names.has(h.toLowerCase()))) return false
    // keep the hostnames the existing certificate already serves
    for (const n of names) if (!wanted.includes(n)) wanted.push(n)
  }
  ensurePrivateDir(layout.serverDir)
  const keys = await generateKeyPair(options.keyAlgorithm ?? 'p256')
  const cert = await issueServerCertificate(ca.issuing, { hostnames: wanted, publicKey: keys.publicKey }, deps)
  writeFileAtomic(layout.serverKey, await privateKeyToPem(keys.privateKey, options.passphrase), 0o600)
  writeFileAtomic(layout.serverCert, certificateToPem(cert) + certificateToPem(ca.issuing.certificate), 0o644)
  return true
}

function subjectAltNames(cert: X509Certificate): string[] {
  const ext = cert.extensions.find((e) => e.type === '2.5.29.17') as
    | { names?: { items?: { type: string; value: string }[] } }
    | undefined
  const builtIn = new Set(['localhost', '127.0.0.1', '::1'])
  return (ext?.names?.items ?? [])
    .filter((n) => n.type === 'dns' || n.type === 'ip')
    .map((n) => n.value.toLowerCase())
    .filter((n) => !builtIn.has(n))
}

function readCert(path: string, options: { firstOfChain?: boolean } = {}): X509Certificate {
  try {
    const pem = readFileSync(path, 'utf8')
    if (options.firstOfChain) {
      const [first] = parseCertificatesPem(pem)
      if (first) return first
    }
    return parseCertificatePem(pem)
  } catch (err) {
    throw new CaKeyUnreadable(path, { cause: err })
  }
}

function readKeyFile(path: string): string {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch (err) {
    throw new CaKeyUnreadable(path, { cause: err })
  }
  if ((mode & 0o077) !== 0) throw new CaKeyPermissions(path, (mode & 0o777).toString(8).padStart(4, '0'))
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new CaKeyUnreadable(path, { cause: err })
  }
}

async function readKey(path: string, passphrase?: string): Promise<CryptoKey> {
  return openKey(path, readKeyFile(path), passphrase)
}

async function openKey(path: string, pem: string, passphrase?: string): Promise<CryptoKey> {
  try {
    return await privateKeyFromPem(pem, passphrase === undefined ? {} : { passphrase })
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'GH_KEY_PASSPHRASE_REQUIRED') throw new CaPassphraseRequired(path, { cause: err })
    if (code === 'GH_KEY_PASSPHRASE_WRONG') throw new CaPassphraseWrong(path, { cause: err })
    throw new CaKeyUnreadable(path, { cause: err })
  }
}
