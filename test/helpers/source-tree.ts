import { readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'

/** The repository's root, for tests that read the source tree (architecture, exports, docs paths). */
export const repoRoot = resolve(import.meta.dirname, '../..')

/** Every .ts file under a folder of the repository, as paths from the root. */
export function sources(dir: string): string[] {
  return readdirSync(join(repoRoot, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(repoRoot, path)).isDirectory()) return sources(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

/** The root files: the composition root, the CLI, the configuration, the logger (not tool configs). */
export const rootFiles = (): string[] => readdirSync(repoRoot).filter((n) => n.endsWith('.ts') && !n.endsWith('.config.ts'))
