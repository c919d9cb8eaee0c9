import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { DeviceBundle } from './fleet.ts'

/**
 * Device bundle folders, as `gatehouse device create` writes them: <dir>/<id>/cert.pem, key.pem (0600)
 * and ca.pem. The simulator reads them, and writes a renewed certificate and key back in place.
 */

const FILES = ['cert.pem', 'key.pem', 'ca.pem'] as const

/** The bundle in <dir>/<id>/, or null when one of its three files is missing. */
export function readBundle(dir: string, deviceId: string): DeviceBundle | null {
  const folder = join(dir, deviceId)
  if (!FILES.every((f) => existsSync(join(folder, f)))) return null
  const read = (f: string) => readFileSync(join(folder, f), 'utf8')
  return { deviceId, cert: read('cert.pem'), key: read('key.pem'), ca: read('ca.pem') }
}

/** Every complete bundle folder under dir, sorted by id (the folder name is the device id). */
export function readBundles(dir: string): DeviceBundle[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort()
    .flatMap((id) => {
      const bundle = readBundle(dir, id)
      return bundle ? [bundle] : []
    })
}

function stage(path: string, data: string, mode: number): string {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return tmp
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // not every platform can fsync a directory
  }
}

/**
 * Writes (or replaces) <dir>/<id>/{cert.pem,key.pem,ca.pem}: all three are first written to temp
 * files and fsynced (key.pem 0600), then renamed into place one after the other, so a failure while
 * writing leaves the old bundle untouched and only a crash between the renames could mix old and new.
 */
export function writeBundle(dir: string, bundle: DeviceBundle): string {
  const folder = join(dir, bundle.deviceId)
  mkdirSync(folder, { recursive: true, mode: 0o700 })
  const contents: Record<(typeof FILES)[number], [string, number]> = {
    'cert.pem': [bundle.cert, 0o644],
    'key.pem': [bundle.key, 0o600],
    'ca.pem': [bundle.ca, 0o644],
  }
  const staged: [string, string][] = []
  try {
    for (const f of FILES) staged.push([stage(join(folder, f), ...contents[f]), join(folder, f)])
  } catch (err) {
    for (const [tmp] of staged) rmSync(tmp, { force: true })
    throw err
  }
  for (const [tmp, target] of staged) renameSync(tmp, target)
  fsyncDir(folder)
  return folder
}
