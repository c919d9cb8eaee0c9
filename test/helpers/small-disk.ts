import { spawnSync } from 'node:child_process'
import { onTestFinished } from 'vitest'
import { tempDir } from './temp-dir.ts'

/** Whether this process may mount a tmpfs (root, with mount installed): tests of a full disk need one. */
export const mountable = spawnSync('mount', ['--version']).status === 0 && process.getuid?.() === 0

/** A small tmpfs at a fresh directory, unmounted when the test ends; undefined where mount is refused (not root). */
export function smallDisk(size: string): string | undefined {
  const dir = tempDir('gatehouse-disk-')
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' })
  if (mounted.status !== 0) return undefined
  onTestFinished(() => void spawnSync('umount', ['-l', dir]))
  return dir
}
