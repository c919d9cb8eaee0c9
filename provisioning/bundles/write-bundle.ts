import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseCertificateDer, parseCertificatesPem, toPkcs12 } from '../../certs/index.ts'
import type { IssuedCertificate } from '../authority/device-authority.ts'
import { BundleNeedsKey, OutputExists } from '../errors.ts'
import { fsyncDir, writeFileAtomic } from '../data-dir/atomic-file.ts'

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

/**
 * Writes one device's files: <id>/cert.pem, <id>/key.pem (0600, only when Gatehouse made the key)
 * and <id>/ca.pem (the chain to trust); or <id>.p12 (0600) holding key, certificate and chain.
 * Refuses to overwrite anything.
 */
export function writeDeviceBundle(outDir: string, issued: IssuedCertificate, options: BundleOptions): string {
  const target = bundlePath(outDir, issued.deviceId, options.format)
  if (existsSync(target)) throw new OutputExists(target)
  if (options.format === 'p12') {
    if (!issued.privateKey) throw new BundleNeedsKey(issued.deviceId)
    const der = toPkcs12({
      privateKeyPkcs8: issued.privateKey.pkcs8,
      certificate: parseCertificateDer(issued.certificateDer),
      chain: parseCertificatesPem(issued.chainPem),
      password: options.p12Password ?? '',
      friendlyName: issued.deviceId,
    })
    writeFileAtomic(target, der, 0o600)
    return target
  }
  mkdirSync(target, { mode: 0o700 })
  writeFileAtomic(join(target, 'cert.pem'), issued.certificatePem, 0o644)
  writeFileAtomic(join(target, 'ca.pem'), issued.chainPem, 0o644)
  if (issued.privateKey) writeFileAtomic(join(target, 'key.pem'), issued.privateKey.pem, 0o600)
  return target
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
 * folder means), then calls commit() (the registry transaction), then moves the bundles into place. If
 * anything fails before commit, the staging folder is removed and the registry is untouched; no device is
 * ever registered without its key on disk, and a bundle whose device is missing is never without the note.
 */
export async function writeBundlesThenCommit(
  outDir: string,
  issued: IssuedCertificate[],
  options: BundleOptions,
  commit: () => void,
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
    let done = 0
    for (const i of issued) {
      writeDeviceBundle(staging, i, options)
      onProgress?.(++done, issued.length)
    }
    commit()
  } catch (err) {
    rmSync(staging, { recursive: true, force: true })
    throw err
  }
  for (const name of readdirSync(staging)) if (name !== STAGING_NOTE) renameSync(join(staging, name), join(outDir, name))
  rmSync(staging, { recursive: true, force: true })
  fsyncDir(outDir)
  return issued.map((i) => bundlePath(outDir, i.deviceId, options.format))
}
