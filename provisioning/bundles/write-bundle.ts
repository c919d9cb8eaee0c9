import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'
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

/** A bundle's files relative to its path: for PEM <id>/cert.pem, ca.pem and key.pem; for PKCS#12 the <id>.p12 itself (''). */
function bundleFiles(issued: IssuedCertificate, options: BundleOptions): { name: string; data: string | Uint8Array; mode: number }[] {
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
    { name: 'ca.pem', data: issued.chainPem, mode: 0o644 },
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

/**
 * Devices per chunk of a staged batch: their files are written, then fsynced together (a few fds at a
 * time, never one per file of a 100,000-device batch), before the next chunk is written.
 */
const CHUNK = 256
/**
 * fsyncs in flight. They run on libuv's thread pool (4 threads by default); on ext4 concurrent fsyncs
 * share a journal commit, which is where a batch's time went when each file was synced one by one.
 */
const SYNC_CONCURRENCY = 8

/**
 * Writes a chunk of bundles into the staging folder without syncing each write, then syncs them: every
 * file, then every bundle folder (its entries), concurrently. A file a crash cuts short is in the
 * staging folder of an uncommitted batch: void, as its note says.
 */
async function writeStagedChunk(staging: string, chunk: IssuedCertificate[], options: BundleOptions): Promise<void> {
  const files: string[] = []
  const dirs: string[] = []
  for (const issued of chunk) {
    const target = bundlePath(staging, issued.deviceId, options.format)
    const written = bundleFiles(issued, options)
    if (options.format === 'pem') {
      mkdirSync(target, { mode: 0o700 })
      dirs.push(target)
    }
    for (const f of written) {
      const path = f.name ? join(target, f.name) : target
      writeNew(path, f.data, f.mode)
      files.push(path)
    }
  }
  await syncAll([...files, ...dirs])
}

/** Creates a file that must not exist yet, with its final mode, and writes it (not synced: the caller syncs). */
function writeNew(path: string, data: string | Uint8Array, mode: number): void {
  const fd = openSync(path, 'wx', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
  } catch (err) {
    throw storeFailure(err) ?? err // a full disk: GH_STORE_DISK_FULL (the staging folder is then removed)
  } finally {
    closeSync(fd)
  }
}

/** fsync of every path (files and directories), SYNC_CONCURRENCY at a time; resolves when all are durable. */
async function syncAll(paths: string[]): Promise<void> {
  let next = 0
  async function worker(): Promise<void> {
    while (next < paths.length) {
      const handle = await open(paths[next++] as string, 'r')
      try {
        await handle.sync()
      } catch (err) {
        throw storeFailure(err) ?? err
      } finally {
        await handle.close()
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, paths.length) }, worker))
}

/** The note a staging folder carries from its first write: what a folder left by a killed process means. */
const STAGING_NOTE = 'NOTE.txt'
const STAGING_NOTE_TEXT = `Gatehouse writes a batch's bundles here, commits the devices to the registry, then moves the
bundles out. This folder is left only when the process stopped in between (killed, power cut):
- bundles of devices that 'gatehouse device list' shows were committed: move them out and use them;
- bundles of devices it does not show were never registered: they are void, delete them.
`

/**
 * Writes every bundle into a staging folder inside outDir (a NOTE.txt first, saying what a left-over
 * folder means), makes them durable (each chunk's files and folders fsynced together, then the staging
 * folder once), then calls commit() (the registry transaction), then moves the bundles into place. If
 * anything fails before commit, the staging folder is removed and the registry is untouched; no device is
 * ever registered without its key durably on disk, and a bundle whose device is missing is never without
 * the note.
 */
export async function writeBundlesThenCommit(
  outDir: string,
  issued: IssuedCertificate[],
  options: BundleOptions,
  commit: () => void | Promise<void>,
  onProgress?: (done: number, total: number) => void,
): Promise<string[]> {
  mkdirSync(outDir, { recursive: true, mode: 0o700 })
  for (const i of issued) {
    const target = bundlePath(outDir, i.deviceId, options.format)
    if (existsSync(target)) throw new OutputExists(target)
  }
  const staging = mkdtempSync(join(outDir, '.gatehouse-staging-'))
  try {
    writeFileAtomic(join(staging, STAGING_NOTE), STAGING_NOTE_TEXT, 0o644)
    for (let done = 0; done < issued.length; ) {
      const chunk = issued.slice(done, done + CHUNK)
      await writeStagedChunk(staging, chunk, options)
      done += chunk.length
      onProgress?.(done, issued.length)
    }
    fsyncDir(staging) // the bundles' entries: only now may the registry name them
    await commit()
  } catch (err) {
    rmSync(staging, { recursive: true, force: true })
    throw err
  }
  for (const name of readdirSync(staging)) if (name !== STAGING_NOTE) renameSync(join(staging, name), join(outDir, name))
  rmSync(staging, { recursive: true, force: true })
  fsyncDir(outDir)
  return issued.map((i) => bundlePath(outDir, i.deviceId, options.format))
}
