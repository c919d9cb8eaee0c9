import { existsSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fsyncDir } from '../data-dir/atomic-file.ts'
import type { DataDirLayout } from '../data-dir/layout.ts'

/** The files of a staged rotation (ca/next/<name>) and where each goes, in the order they are moved. */
export function pendingRotationMoves(layout: DataDirLayout): [name: string, target: string][] {
  return [
    ['server.key', layout.serverKey],
    ['server.crt', layout.serverCert],
    ['issuing.key', layout.issuingKey],
    ['issuing.crt', layout.issuingCert],
    ['ca.pem', layout.chain],
  ]
}

/**
 * Finishes a rotation whose staging directory ca/next was committed (renamed into place) but not yet
 * fully moved: each file still in ca/next is renamed over its target, then ca/next is removed. Every
 * step is idempotent, and a file another process moved first is skipped (ENOENT), so loadCa,
 * loadServerTls and `ca rotate` all call this before they read: whoever comes first after a crash
 * completes the rotation, and no reader ever sees a new issuing.crt beside the old issuing.key.
 * Returns whether there was anything to finish.
 */
export function completePendingRotation(layout: DataDirLayout): boolean {
  if (!existsSync(layout.pendingRotation)) return false
  for (const [name, target] of pendingRotationMoves(layout)) {
    try {
      renameSync(join(layout.pendingRotation, name), target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  fsyncDir(layout.serverDir)
  fsyncDir(layout.caDir)
  rmSync(layout.pendingRotation, { recursive: true, force: true })
  fsyncDir(layout.caDir)
  return true
}
