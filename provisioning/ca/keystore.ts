import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import {
  normalizeSerial,
  certificateToPem,
  chainPem,
  createCertificateAuthority,
  generateKeyPair,
  issueServerCertificate,
  parseCertificatePem,
  parseCertificatesPem,
  privateKeyFromPem,
  privateKeyToPem,
  systemClock,
  type CaCertificates,
  type CertificateAuthority,
  type Clock,
  type IssuerKeyPair,
  type CryptoKey,
  type CryptoKeyPair,
  type KeyAlgorithm,
  type OperatingCa,
  type Random,
  type X509Certificate,
} from '../../certs/index.ts'
import { CaKeyPermissions, CaKeyUnreadable, CaNotInitialized, CaPassphraseRequired, CaPassphraseWrong, DataDirUnusable } from '../errors.ts'
import { fsyncDir, writeFileAtomic } from '../data-dir/atomic-file.ts'
import { dataDirLayout, type DataDirLayout } from '../data-dir/layout.ts'
import { completePendingRotation } from './pending-rotation.ts'
import {
  isKeyReference,
  keyReferenceText,
  openPkcs11Token,
  parseKeyReference,
  type Pkcs11Location,
  type Pkcs11Token,
} from './pkcs11-token.ts'

export interface CaKeystoreDeps {
  clock: Clock
  random: Random
}

/** What opens the CA keys: the passphrase of key files, the user PIN of a PKCS#11 token. */
export interface CaSecrets {
  passphrase?: string
  pkcs11Pin?: string
}

export interface InitOptions extends CaSecrets {
  /** Encrypts the CA and server keys at rest (PKCS#8, AES-256) when set. */
  passphrase?: string
  /** a new CA's root and issuing keys are made in this token (non-extractable); the data directory keeps references */
  pkcs11?: Pkcs11Location
  keyAlgorithm?: KeyAlgorithm
  hostnames?: string[]
  caName?: string
}

export interface InitResult {
  createdCa: boolean
  serverCertIssued: boolean
  layout: DataDirLayout
  ca: OperatingCa
  /** the token that holds the CA keys; undefined when they are key files */
  pkcs11?: Pkcs11Location
}

/**
 * Creates the data directory, the CA (root + issuing) and the broker's server certificate on first
 * use. Idempotent: an existing CA is loaded (which proves the passphrase) and never replaced. The
 * server certificate is reissued only when the requested hostnames are not all in it.
 */
export async function initDataDir(dataDir: string, options: InitOptions, deps: CaKeystoreDeps): Promise<InitResult> {
  const layout = dataDirLayout(dataDir)
  // the token is opened (module, label, PIN checked) before anything is created
  const token = options.pkcs11 && !existsSync(layout.caDir) ? await openPkcs11Token(options.pkcs11, options.pkcs11Pin) : undefined
  ensurePrivateDir(layout.root)
  let createdCa = false
  let ca: OperatingCa
  if (existsSync(layout.caDir)) {
    ca = await loadCa(dataDir, options, deps.clock)
  } else {
    const alg = options.keyAlgorithm ?? 'p256'
    const stamp = labelStamp(deps.clock.now())
    const [root, issuing] = await Promise.all([
      newCaKeyPair(token, alg, `gatehouse-root-${stamp}`, options.passphrase),
      newCaKeyPair(token, alg, `gatehouse-issuing-${stamp}`, options.passphrase),
    ])
    const created = await createCertificateAuthority(
      { name: options.caName ?? 'Gatehouse', keyAlgorithm: alg, keys: { root: root.keys, issuing: issuing.keys } },
      deps,
    )
    writeCaAtomically(layout, created, { root: root.keyFile, issuing: issuing.keyFile })
    ca = { ...created, root: { certificate: created.root.certificate } } // the root key stays on disk only
    createdCa = true
  }
  const serverCertIssued = await ensureServerCertificate(layout, ca, options, deps)
  const issuingKey = readKeyFile(layout.issuingKey)
  const reference = isKeyReference(issuingKey) ? parseKeyReference(issuingKey, layout.issuingKey) : undefined
  return { createdCa, serverCertIssued, layout, ca, ...(reference && { pkcs11: { module: reference.module, token: reference.token } }) }
}

/**
 * A new CA key pair and what its key file holds: made in the token when there is one (non-extractable;
 * the file names it), else in memory (the file holds it as PKCS#8, encrypted with the passphrase if set).
 */
export async function newCaKeyPair(
  token: Pkcs11Token | undefined,
  alg: KeyAlgorithm,
  label: string,
  passphrase: string | undefined,
): Promise<{ keys: CryptoKeyPair; keyFile: string }> {
  if (token) {
    const made = await token.generateKeyPair(alg, label)
    return { keys: made.keys, keyFile: keyReferenceText(made.reference) }
  }
  const keys = await generateKeyPair(alg)
  return { keys, keyFile: await privateKeyToPem(keys.privateKey, passphrase) }
}

/** The token that holds the key of this key file, or undefined when the file holds the key itself. */
export async function tokenOfKeyFile(path: string, secrets: CaSecrets): Promise<Pkcs11Token | undefined> {
  const text = readKeyFile(path)
  return isKeyReference(text) ? openPkcs11Token(parseKeyReference(text, path), secrets.pkcs11Pin) : undefined
}

/** 20261204T170012Z: key labels in a token tell CAs apart by when they were made. */
export function labelStamp(now: Date): string {
  return now.toISOString().replace(/[-:]|\.\d+/g, '')
}

/**
 * Loads the CA: the root certificate (not its key: see loadRootKey), the current issuing CA and the
 * previous issuing CAs (ca/previous/<serial>/) that have not expired at clock.now(). A rotation left
 * half-moved by a crash is completed first. Every failure is a coded error that says what to do, and
 * nothing else is changed.
 */
export async function loadCa(
  dataDir: string,
  secrets: CaSecrets = {},
  clock: Clock = systemClock,
): Promise<OperatingCa & { previous: IssuerKeyPair[] }> {
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir)
  // A rotation in another process moves the key before the certificate: read again if one is under way.
  for (let attempt = 0; ; attempt++) {
    completePendingRotation(layout)
    const issuingPem = readText(layout.issuingCert)
    const ca = {
      root: { certificate: readCert(layout.rootCert) },
      issuing: { certificate: readCert(layout.issuingCert, { pem: issuingPem }), privateKey: await readKey(layout.issuingKey, secrets) },
    }
    const settled = !existsSync(layout.pendingRotation) && readText(layout.issuingCert) === issuingPem
    if (!settled && attempt < 3) continue
    const previous: IssuerKeyPair[] = []
    for (const { certificate, keyPath } of livePreviousIssuers(layout, ca.issuing.certificate, clock))
      previous.push({ certificate, privateKey: await readKey(keyPath, secrets) })
    return { ...ca, previous }
  }
}

/**
 * The CA's certificates as loadCa reads them, without its keys: what a CLI command reads at first, since most
 * sign nothing (issue 14). Its keys are read when something first signs, by loadCa again (a rotation in between
 * must not pair one CA's certificate with another's key). The same errors as loadCa's for the certificates.
 */
export function loadCaCertificates(dataDir: string, clock: Clock = systemClock): CaCertificates {
  const layout = dataDirLayout(dataDir)
  if (!existsSync(layout.caDir)) throw new CaNotInitialized(dataDir, dataDir)
  completePendingRotation(layout)
  const issuing = readCert(layout.issuingCert)
  return {
    root: { certificate: readCert(layout.rootCert) },
    issuing: { certificate: issuing },
    previous: livePreviousIssuers(layout, issuing, clock).map(({ certificate }) => ({ certificate })),
  }
}

/** The root CA with its private key: only `ca rotate` (signing a new issuing CA) opens it. */
export async function loadRootKey(dataDir: string, secrets: CaSecrets = {}): Promise<IssuerKeyPair> {
  const layout = dataDirLayout(dataDir)
  return { certificate: readCert(layout.rootCert), privateKey: await readKey(layout.rootKey, secrets) }
}

/** ca/previous/<serial>/: the issuing CAs a rotation replaced, newest first (only those valid at now). */
function livePreviousIssuers(
  layout: DataDirLayout,
  current: X509Certificate,
  clock: Clock,
): { certificate: X509Certificate; keyPath: string }[] {
  const now = clock.now().getTime()
  return (
    listPreviousIssuers(layout)
      // a copy of the current one is what a crash right after keeping it leaves: skip it
      .filter(({ certificate }) => certificate.serialNumber !== current.serialNumber && certificate.notAfter.getTime() > now)
      .sort((a, b) => newestFirst(a.certificate, b.certificate))
  )
}

/** Newest first: by notBefore, then by notAfter (two rotations within a second have the same notBefore). */
export function newestFirst(a: X509Certificate, b: X509Certificate): number {
  return b.notBefore.getTime() - a.notBefore.getTime() || b.notAfter.getTime() - a.notAfter.getTime()
}

/** Every kept previous issuing CA certificate (expired ones too), unsorted; staging leftovers are ignored. */
export function listPreviousIssuers(layout: DataDirLayout): { serial: string; certificate: X509Certificate; keyPath: string }[] {
  if (!existsSync(layout.previousDir)) return []
  return readdirSync(layout.previousDir)
    .filter((name) => /^[0-9a-f]+$/.test(name))
    .map((name) => {
      const dir = join(layout.previousDir, name)
      // the folder's name in the canonical form every caller compares with (a rotation writes it so)
      return { serial: normalizeSerial(name), certificate: readCert(join(dir, 'issuing.crt')), keyPath: join(dir, 'issuing.key') }
    })
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
  for (let attempt = 0; ; attempt++) {
    completePendingRotation(layout)
    if (!existsSync(layout.serverCert)) throw new CaNotInitialized(dataDir, dataDir)
    const keyPem = readKeyFile(layout.serverKey)
    const cert = readText(layout.serverCert)
    const ca = readText(layout.chain)
    // a rotation moving files meanwhile (key first): read again so key and certificate match
    if (existsSync(layout.pendingRotation) && attempt < 3) continue
    return { key: await privateKeyToPem(await openKey(layout.serverKey, keyPem, passphrase)), cert, ca }
  }
}

function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new DataDirUnusable(dir, (err as Error).message, { cause: err })
  }
}

function writeCaAtomically(layout: DataDirLayout, ca: CertificateAuthority, keyFiles: { root: string; issuing: string }): void {
  // Build the whole ca/ directory beside its final place, then rename it in: an interrupted init
  // leaves no half-made CA that a later start would trust.
  const staging = `${layout.caDir}.partial-${process.pid}`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { mode: 0o700 })
  const file = (p: string) => join(staging, basename(p))
  writeFileAtomic(file(layout.rootCert), certificateToPem(ca.root.certificate), 0o644)
  writeFileAtomic(file(layout.issuingCert), certificateToPem(ca.issuing.certificate), 0o644)
  writeFileAtomic(file(layout.chain), chainPem(ca), 0o644)
  writeFileAtomic(file(layout.rootKey), keyFiles.root, 0o600)
  writeFileAtomic(file(layout.issuingKey), keyFiles.issuing, 0o600)
  renameSync(staging, layout.caDir)
  fsyncDir(layout.root)
}

async function ensureServerCertificate(
  layout: DataDirLayout,
  ca: OperatingCa,
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

/** The DNS and IP names of a server certificate beyond the built-in ones. */
export function subjectAltNames(cert: X509Certificate): string[] {
  const ext = cert.extensions.find((e) => e.type === '2.5.29.17') as { names?: { items?: { type: string; value: string }[] } } | undefined
  const builtIn = new Set(['localhost', '127.0.0.1', '::1'])
  return (ext?.names?.items ?? [])
    .filter((n) => n.type === 'dns' || n.type === 'ip')
    .map((n) => n.value.toLowerCase())
    .filter((n) => !builtIn.has(n))
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new CaKeyUnreadable(path, { cause: err })
  }
}

export function readCert(path: string, options: { firstOfChain?: boolean; pem?: string } = {}): X509Certificate {
  try {
    const pem = options.pem ?? readFileSync(path, 'utf8')
    // parsed in depth when first read: a command that signs nothing never loads @peculiar/x509 (issue 14)
    if (options.firstOfChain) {
      const [first] = parseCertificatesPem(pem, { defer: true })
      if (first) return first
    }
    return parseCertificatePem(pem, { defer: true })
  } catch (err) {
    throw new CaKeyUnreadable(path, { cause: err })
  }
}

export function readKeyFile(path: string): string {
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

/** A CA key from its file: the PKCS#8 key it holds, or the key in the PKCS#11 token it names. */
export async function readKey(path: string, secrets: CaSecrets = {}): Promise<CryptoKey> {
  const text = readKeyFile(path)
  if (!isKeyReference(text)) return openKey(path, text, secrets.passphrase)
  const reference = parseKeyReference(text, path)
  return (await openPkcs11Token(reference, secrets.pkcs11Pin)).privateKey(reference, path)
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
