import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { type FileHandle, link, mkdir, open } from 'node:fs/promises'
import { join } from 'node:path'
import { parseCertificateDer, parseCertificatesPem, toPkcs12 } from '../../certs/index.ts'
import type { IssuedCertificate } from '../authority/device-authority.ts'
import { BundleNeedsKey, OutputExists } from '../errors.ts'
import { fsyncDir, writeFileAtomic } from '../data-dir/atomic-file.ts'
import { storeFailure } from '../store/store-failure.ts'

export type BundleFormat = 'pem' | 'p12'

export interface BundleOptions {
  format: BundleFormat
  /** required for 'p12' */
  p12Password?: string
}

/** Paths a bundle occupies under an output directory: <id>/ for PEM, <id>.p12 for PKCS#12. */
export function bundlePath(outDir: string, deviceId: string, format: BundleFormat): string {
  return format === 'p12' ? join(outDir, `${deviceId}.p12`) : join(outDir, deviceId)
}

interface BundleFile {
  name: string
  data: string | Uint8Array
  mode: number
  /** the same for every device of a batch (ca.pem): stageBundles writes it once and hard-links it */
  shared?: boolean
}

/** A bundle's files relative to its path: for PEM <id>/cert.pem, ca.pem and key.pem; for PKCS#12 the <id>.p12 itself (''). */
function bundleFiles(issued: IssuedCertificate, options: BundleOptions): BundleFile[] {
  if (options.format === 'p12') {
    if (!issued.privateKey) throw new BundleNeedsKey(issued.deviceId)
    const der = toPkcs12({
      privateKeyPkcs8: issued.privateKey.pkcs8,
      certificate: parseCertificateDer(issued.certificateDer),
      chain: parseCertificatesPem(issued.chainPem),
      password: options.p12Password ?? '',
      friendlyName: issued.deviceId,
    })
    return [{ name: '', data: der, mode: 0o600 }]
  }
  return [
    { name: 'cert.pem', data: issued.certificatePem, mode: 0o644 },
    { name: 'ca.pem', data: issued.chainPem, mode: 0o644, shared: true },
    ...(issued.privateKey ? [{ name: 'key.pem', data: issued.privateKey.pem, mode: 0o600 }] : []),
  ]
}

/**
 * Writes one device's files: <id>/cert.pem, <id>/key.pem (0600, only when Gatehouse made the key)
 * and <id>/ca.pem (the chain to trust); or <id>.p12 (0600) holding key, certificate and chain.
 * Each file atomically and durably (writeFileAtomic). Refuses to overwrite anything.
 */
export function writeDeviceBundle(outDir: string, issued: IssuedCertificate, options: BundleOptions): string {
  const target = bundlePath(outDir, issued.deviceId, options.format)
  if (existsSync(target)) throw new OutputExists(target)
  const files = bundleFiles(issued, options)
  if (options.format === 'pem') mkdirSync(target, { mode: 0o700 })
  for (const f of files) writeFileAtomic(f.name ? join(target, f.name) : target, f.data, f.mode)
  return target
}

/** One file of a staged bundle, created with its final mode, written and fsynced on the same descriptor. */
async function writeDurably(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  let handle: FileHandle | undefined
  try {
    handle = await open(path, 'wx', mode)
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle?.close()
  }
}

/** Why link() can refuse where a copy still works: too many links to one file, or a file system without hard links. */
const NO_LINK = new Set(['EMLINK', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV'])

/** fsync of a folder: its entries are durable. */
async function syncFolder(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The staging folder's own name for a shared file: '~' is in no device id (DEVICE_ID_PATTERN), so no bundle's. */
const SHARED_PREFIX = '~shared-'

/**
 * The note a staging folder carries from its first write: what a folder left by a killed process means. Its
 * name starts with '~' like the shared files', so no device's bundle can take it (a device named NOTE.txt
 * once could: its bundle folder collided with the note and the device could not be created).
 */
export const STAGING_NOTE = '~NOTE.txt'
const STAGING_NOTE_TEXT = `Gatehouse writes a batch's bundles here, commits the devices to the registry, then moves the
bundles out. This folder is left only when the process stopped in between (killed, power cut):
- bundles of devices that 'gatehouse device list' shows were committed: move them out and use them;
- bundles of devices it does not show were never registered: they are void, delete them;
- ~shared-* files are the ca.pem every bundle here holds (hard-linked), not bundles: delete them with the folder.
`

/** A batch's bundles on their way: written into a staging folder as each device is issued, then committed. */
export interface StagedBundles {
  /**
   * Writes one device's bundle into the staging folder and makes it durable (each file fsynced on the
   * descriptor that wrote it, then its folder), on the thread pool: call it as each device is issued, so
   * the writes and their fsyncs overlap key generation. Refuses a bundle whose path exists in outDir.
   */
  write(issued: IssuedCertificate): Promise<void>
  /**
   * Makes the staging folder's entries durable, calls commit() (the registry transaction), then moves the
   * bundles into place; returns their paths. A failure before the commit removes the staging folder.
   */
  commit(commit: () => void | Promise<void>): Promise<string[]>
  /** Removes the staging folder and what it holds: the batch failed before its commit. */
  abort(): void
}

/**
 * Stages bundles under outDir: its folder and the staging folder (with its note, ~NOTE.txt, first, saying what a
 * left-over folder means) are made at the first write. No device is ever registered without its key
 * durably on disk, and a bundle whose device is missing is never without the note.
 */
export function stageBundles(outDir: string, options: BundleOptions): StagedBundles {
  let staging: string | undefined
  const written: IssuedCertificate[] = []
  // a file every bundle of the batch holds (ca.pem): written and fsynced once in the staging folder, by content
  const shared = new Map<string, Promise<string>>()
  let sharedFiles = 0
  function sharedFile(file: BundleFile): Promise<string> {
    const key = `${file.mode}:${String(file.data)}`
    let path = shared.get(key)
    if (path === undefined) {
      const at = join(stagingFolder(), `${SHARED_PREFIX}${sharedFiles++}`)
      path = writeDurably(at, file.data, file.mode).then(() => at)
      shared.set(key, path)
      path.catch(() => shared.delete(key))
    }
    return path
  }
  /** A shared file hard-linked into a bundle (a link fewer than a file and its fsync); a copy where links fail. */
  async function placeShared(file: BundleFile, to: string): Promise<void> {
    try {
      await link(await sharedFile(file), to)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === undefined || !NO_LINK.has(code)) throw err
      if (code === 'EMLINK') shared.delete(`${file.mode}:${String(file.data)}`) // the next bundles link to a new one
      await writeDurably(to, file.data, file.mode)
    }
  }
  function stagingFolder(): string {
    if (staging === undefined) {
      mkdirSync(outDir, { recursive: true, mode: 0o700 })
      staging = mkdtempSync(join(outDir, '.gatehouse-staging-'))
      writeFileAtomic(join(staging, STAGING_NOTE), STAGING_NOTE_TEXT, 0o644)
    }
    return staging
  }
  function abort(): void {
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true })
  }
  return {
    async write(issued) {
      if (existsSync(bundlePath(outDir, issued.deviceId, options.format)))
        throw new OutputExists(bundlePath(outDir, issued.deviceId, options.format))
      const files = bundleFiles(issued, options)
      try {
        const target = bundlePath(stagingFolder(), issued.deviceId, options.format)
        if (options.format === 'pem') await mkdir(target, { mode: 0o700 })
        await Promise.all(
          files.map((f) => {
            const to = f.name ? join(target, f.name) : target
            return f.shared ? placeShared(f, to) : writeDurably(to, f.data, f.mode)
          }),
        )
        if (options.format === 'pem') await syncFolder(target)
      } catch (err) {
        throw storeFailure(err) ?? err // a full disk: GH_STORE_DISK_FULL (the caller then removes the staging folder)
      }
      written.push(issued)
    },
    async commit(commit) {
      try {
        fsyncDir(stagingFolder()) // the bundles' entries: only now may the registry name them
        await commit()
      } catch (err) {
        abort()
        throw err
      }
      const from = stagingFolder()
      for (const i of written) renameSync(bundlePath(from, i.deviceId, options.format), bundlePath(outDir, i.deviceId, options.format))
      rmSync(from, { recursive: true, force: true }) // the note and the shared files' first links
      fsyncDir(outDir)
      return written.map((i) => bundlePath(outDir, i.deviceId, options.format))
    },
    abort,
  }
}

/** Bundles written at a time by writeBundlesThenCommit (each one's files and fsyncs on the thread pool). */
const WRITE_CONCURRENCY = 16

/**
 * Stages the bundles of devices already issued (stageBundles), WRITE_CONCURRENCY at a time, then commits.
 * If anything fails before the commit, the staging folder is removed and the registry is untouched.
 */
export async function writeBundlesThenCommit(
  outDir: string,
  issued: IssuedCertificate[],
  options: BundleOptions,
  commit: () => void | Promise<void>,
  onProgress?: (done: number, total: number) => void,
): Promise<string[]> {
  const staged = stageBundles(outDir, options)
  let next = 0
  let done = 0
  let failure: { err: unknown } | undefined
  async function worker(): Promise<void> {
    while (next < issued.length && !failure) {
      try {
        await staged.write(issued[next++] as IssuedCertificate)
      } catch (err) {
        failure ??= { err }
        return
      }
      onProgress?.(++done, issued.length)
    }
  }
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, issued.length) }, worker))
  if (failure) {
    staged.abort()
    throw failure.err
  }
  return staged.commit(commit)
}
