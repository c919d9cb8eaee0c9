import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { storeFailure } from '../store/store-failure.ts'

/**
 * Writes a file so that a reader sees the old content or the new, never half of either: the bytes go
 * to a temporary file created with the final mode (no window with looser permissions), are fsynced,
 * then renamed over the target, and the directory is fsynced.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'wx', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    rmSync(tmp, { force: true })
    throw storeFailure(err) ?? err // a full disk: GH_STORE_DISK_FULL, the target untouched
  }
  closeSync(fd)
  renameSync(tmp, path)
  fsyncDir(dirname(path))
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
