import { readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { repoRoot, rootFiles, sources } from '../helpers/source-tree.ts'

// The never-arrows of docs/architecture.md and docs/conventions.md §2, checked by reading the imports.
const root = repoRoot

interface Import {
  spec: string
  typeOnly: boolean
  /** the path from the repository root for a relative spec, else the spec */
  target: string
}

/** Every module a file names, read by the TypeScript parser (so no form or line break is missed). */
const read = new Map<string, Import[]>()
function imports(file: string): Import[] {
  let found = read.get(file)
  if (found === undefined) read.set(file, (found = importsOf(file, readFileSync(join(root, file), 'utf8'))))
  return found
}

/**
 * import (with names, default, namespace, or none: `import './x.ts'`), export ... from, import x = require(),
 * import() and require() calls, and import('x') in a type. Type-only: `import type`, `export type`, or
 * every named binding marked `type`.
 */
function importsOf(file: string, text: string): Import[] {
  const found: Import[] = []
  const add = (spec: string, typeOnly: boolean) =>
    found.push({ spec, typeOnly, target: spec.startsWith('.') ? relative(root, resolve(root, file, '..', spec)) : spec })
  const allTypes = (elements: readonly { isTypeOnly: boolean }[]) => elements.length > 0 && elements.every((e) => e.isTypeOnly)
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined
      add(
        node.moduleSpecifier.text,
        clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && named !== undefined && allTypes(named))),
      )
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined
      add(node.moduleSpecifier.text, node.isTypeOnly || (named !== undefined && allTypes(named)))
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      add(node.moduleReference.expression.text, node.isTypeOnly)
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    ) {
      const [arg] = node.arguments
      if (arg && ts.isStringLiteralLike(arg)) add(arg.text, false)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, true)
    }
    ts.forEachChild(node, visit)
  }
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS))
  return found
}

const folder = (target: string) => target.split('/')[0] as string
const planes = ['certs', 'provisioning', 'broker', 'device-sim']

/**
 * Deep imports a root file may make, each with its reason; the test fails when one is no longer made.
 * cli.ts: the sim command's declaration only (its run, with mqtt.js, loads when it runs).
 * config.ts: the broker's option schemas only (broker/options.ts), so reading the configuration does not
 * load the data plane (aedes, ws, ioredis): a CLI command answers at once (issue 14).
 */
const rootDeepImports = ['cli.ts -> ./device-sim/cli.ts', 'config.ts -> ./broker/options.ts']

describe('architecture boundaries', () => {
  it('certs/ imports no other folder of Gatehouse', () => {
    const bad = sources('certs').flatMap((f) =>
      imports(f)
        .filter((i) => i.spec.startsWith('.') && folder(i.target) !== 'certs')
        .map((i) => `${f} -> ${i.spec}`),
    )
    expect(bad).toEqual([])
  })

  it('provisioning/ never imports broker/ or device-sim/, and reaches certs/ only through its index', () => {
    const bad = sources('provisioning').flatMap((f) =>
      imports(f)
        .filter(
          (i) =>
            i.spec.startsWith('.') &&
            (['broker', 'device-sim'].includes(folder(i.target)) || (folder(i.target) === 'certs' && i.target !== 'certs/index.ts')),
        )
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

  it('only provisioning/store/postgres/ opens PostgreSQL', () => {
    const all = ['certs', 'provisioning', 'broker', 'device-sim'].flatMap(sources)
    const bad = all.filter((f) => !f.startsWith('provisioning/store/postgres/') && imports(f).some((i) => i.spec === 'pg'))
    expect(bad).toEqual([])
    expect(
      sources('provisioning').some((f) => f.startsWith('provisioning/store/postgres/') && imports(f).some((i) => i.spec === 'pg')),
    ).toBe(true)
  })

  it('device-sim/ uses at most certs/ of Gatehouse, through its index', () => {
    const bad = sources('device-sim').flatMap((f) =>
      imports(f)
        .filter(
          (i) =>
            i.spec.startsWith('.') &&
            (!['device-sim', 'certs'].includes(folder(i.target)) || (folder(i.target) === 'certs' && i.target !== 'certs/index.ts')),
        )
        .map((i) => `${f} -> ${i.spec}`),
    )
    expect(bad).toEqual([])
  })

  it('the root files (gatehouse.ts, cli.ts, config.ts, logger.ts) reach a folder only through an index.ts', () => {
    const deep = rootFiles().flatMap((f) =>
      imports(f)
        .filter((i) => i.spec.startsWith('.') && planes.includes(folder(i.target)) && !i.target.endsWith('/index.ts'))
        .map((i) => `${f} -> ${i.spec}`),
    )
    expect(deep).toEqual(rootDeepImports)
  })

  it("only the composition root (and config.ts, for the planes' option schemas) imports both planes", () => {
    const both = rootFiles().filter((f) => {
      const targets = imports(f).map((i) => folder(i.target))
      return targets.includes('broker') && targets.includes('provisioning')
    })
    expect(both).toEqual(['config.ts', 'gatehouse.ts'])
  })

  describe('the import reader (so a rule that finds nothing has read something)', () => {
    it('reads every form of import, on one line or several', () => {
      const source = [
        "import './side-effect.ts'",
        "import 'reflect-metadata'",
        "import def from './default.ts'",
        "import * as ns from './namespace.ts'",
        'import {',
        '  a,',
        '  type B,',
        "} from '../provisioning/multi-line.ts'",
        "import type { C } from '../provisioning/type-only.ts'",
        "import { type D, type E } from '../provisioning/inline-types.ts'",
        'export type Local = { x: number }',
        "import { f } from '../certs/after-a-type.ts'",
        "export { g } from './re-export.ts'",
        "export type { H } from './type-re-export.ts'",
        "export * from './star.ts'",
        "import fs = require('node:fs')",
        "const lazy = () => import('../device-sim/dynamic.ts')",
        "const req = require('../device-sim/required.cjs')",
        "let t: import('../provisioning/in-a-type.ts').T",
        "// import { commented } from './comment.ts'",
        'const text = "import { inString } from \'./string.ts\'"',
      ].join('\n')
      expect(importsOf('broker/example.ts', source).map((i) => `${i.target}${i.typeOnly ? ' (type)' : ''}`)).toEqual([
        'broker/side-effect.ts',
        'reflect-metadata',
        'broker/default.ts',
        'broker/namespace.ts',
        'provisioning/multi-line.ts',
        'provisioning/type-only.ts (type)',
        'provisioning/inline-types.ts (type)',
        'certs/after-a-type.ts',
        'broker/re-export.ts',
        'broker/type-re-export.ts (type)',
        'broker/star.ts',
        'node:fs',
        'device-sim/dynamic.ts',
        'device-sim/required.cjs',
        'provisioning/in-a-type.ts (type)',
      ])
    })

    it('finds the known imports of known files: a multi-line import in gatehouse.ts, a side-effect import in certs/', () => {
      expect(imports('gatehouse.ts')).toEqual(
        expect.arrayContaining([
          { spec: './broker/index.ts', typeOnly: false, target: 'broker/index.ts' },
          { spec: './provisioning/index.ts', typeOnly: false, target: 'provisioning/index.ts' },
          { spec: 'node:tls', typeOnly: true, target: 'node:tls' },
        ]),
      )
      expect(imports('certs/x509.ts')).toContainEqual({ spec: 'reflect-metadata', typeOnly: false, target: 'reflect-metadata' })
    })

    it('reads files with imports in every folder the rules check, and the root files', () => {
      const counts = Object.fromEntries(
        [...planes, '.'].map((dir) => {
          const files = dir === '.' ? rootFiles() : sources(dir)
          return [dir, { files: files.length > 0, imports: files.flatMap(imports).length > files.length }]
        }),
      )
      expect(counts).toEqual(Object.fromEntries([...planes, '.'].map((dir) => [dir, { files: true, imports: true }])))
      expect(rootFiles()).toEqual(expect.arrayContaining(['gatehouse.ts', 'cli.ts', 'config.ts', 'logger.ts']))
    })
  })
})
