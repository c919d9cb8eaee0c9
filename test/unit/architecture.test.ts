import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

// The never-arrows of docs/architecture.md and docs/conventions.md §2, checked by reading the imports.
const root = resolve(import.meta.dirname, '../..')

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) return sources(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

function imports(file: string): { spec: string; typeOnly: boolean; target: string }[] {
  const text = readFileSync(join(root, file), 'utf8')
  const found: { spec: string; typeOnly: boolean; target: string }[] = []
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
    const spec = m[3] as string
    const target = spec.startsWith('.') ? relative(root, resolve(root, file, '..', spec)) : spec
    found.push({ spec, typeOnly: Boolean(m[2]), target })
  }
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] as string
    found.push({ spec, typeOnly: false, target: spec.startsWith('.') ? relative(root, resolve(root, file, '..', spec)) : spec })
  }
  return found
}

const folder = (target: string) => target.split('/')[0] as string

describe('architecture boundaries', () => {
  it('certs/ imports no other folder of Gatehouse', () => {
    const bad = sources('certs').flatMap((f) => imports(f).filter((i) => i.spec.startsWith('.') && folder(i.target) !== 'certs').map((i) => `${f} -> ${i.spec}`))
    expect(bad).toEqual([])
  })

  it('provisioning/ never imports broker/ or device-sim/, and reaches certs/ only through its index', () => {
    const bad = sources('provisioning').flatMap((f) =>
      imports(f)
        .filter((i) => i.spec.startsWith('.') && (['broker', 'device-sim'].includes(folder(i.target)) || (folder(i.target) === 'certs' && i.target !== 'certs/index.ts')))
        .map((i) => `${f} -> ${i.spec}`),
    )
    expect(bad).toEqual([])
  })

  it('broker/ reaches certs/ only through its index, provisioning/ only for types, and never the database', () => {
    const bad = sources('broker').flatMap((f) =>
      imports(f)
        .filter(
          (i) =>
            i.spec === 'better-sqlite3' ||
            (folder(i.target) === 'certs' && i.target !== 'certs/index.ts') ||
            (folder(i.target) === 'provisioning' && (!i.typeOnly || i.target !== 'provisioning/index.ts')) ||
            folder(i.target) === 'device-sim',
        )
        .map((i) => `${f} -> ${i.spec}`),
    )
    expect(bad).toEqual([])
  })

  it('only provisioning/store/ opens SQLite', () => {
    const all = ['certs', 'provisioning', 'broker', 'device-sim'].flatMap(sources)
    const bad = all.filter((f) => !f.startsWith('provisioning/store/') && imports(f).some((i) => i.spec === 'better-sqlite3'))
    expect(bad).toEqual([])
  })

  it('device-sim/ uses at most certs/ of Gatehouse', () => {
    const bad = sources('device-sim').flatMap((f) =>
      imports(f).filter((i) => i.spec.startsWith('.') && !['device-sim', 'certs'].includes(folder(i.target))).map((i) => `${f} -> ${i.spec}`),
    )
    expect(bad).toEqual([])
  })

  it('only the composition root imports both planes', () => {
    const rootFiles = readdirSync(root).filter((n) => n.endsWith('.ts') && !n.endsWith('.config.ts'))
    const both = rootFiles.filter((f) => {
      const targets = imports(f).map((i) => folder(i.target))
      return targets.includes('broker') && targets.includes('provisioning')
    })
    expect(both).toEqual(['gatehouse.ts'])
  })
})
