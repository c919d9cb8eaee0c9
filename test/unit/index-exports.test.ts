import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { repoRoot, rootFiles, sources } from '../helpers/source-tree.ts'

// A folder's index.ts is its public face: it exports what files outside the folder import, no more.
// test/ is not counted (tests may import a module file directly).
const root = repoRoot

const files = [...rootFiles(), ...['bench', 'broker', 'certs', 'device-sim', 'provisioning'].flatMap(sources)]
const parsed = new Map(files.map((f) => [f, ts.createSourceFile(f, readFileSync(join(root, f), 'utf8'), ts.ScriptTarget.Latest)]))

/** The relative-import statements of a file, with the file each one names. */
function importsOf(file: string) {
  return parsed.get(file)!.statements.flatMap((st) => {
    if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) || !st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier))
      return []
    const spec = st.moduleSpecifier.text
    return spec.startsWith('.') ? [{ st, target: relative(root, resolve(root, dirname(file), spec)) }] : []
  })
}

/** Index files that re-export (a module that merely happens to be called index.ts is not a folder's face). */
const indexes = files.filter((f) => f.endsWith('index.ts') && importsOf(f).some(({ st }) => ts.isExportDeclaration(st)))

function exportedNames(file: string): string[] {
  return parsed.get(file)!.statements.flatMap((st) => {
    if (ts.isExportDeclaration(st))
      return st.exportClause && ts.isNamedExports(st.exportClause) ? st.exportClause.elements.map((e) => e.name.text) : ['*']
    const exported = ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
    if (!exported) return []
    if (ts.isVariableStatement(st)) return st.declarationList.declarations.map((d) => d.name.getText(parsed.get(file)))
    const name = (st as ts.DeclarationStatement).name
    return name && ts.isIdentifier(name) ? [name.text] : []
  })
}

/** index -> names imported from it by files outside its folder (through another index's re-export too). */
function usedOutside(): Map<string, Set<string>> {
  const used = new Map(indexes.map((i) => [i, new Set<string>()]))
  const reexports: { outer: string; inner: string; names: string[] }[] = []
  for (const file of files) {
    for (const { st, target } of importsOf(file)) {
      if (!indexes.includes(target) || file.startsWith(`${dirname(target)}/`)) continue
      const clause = ts.isImportDeclaration(st) ? st.importClause?.namedBindings : st.exportClause
      if (clause && !ts.isNamedImports(clause) && !ts.isNamedExports(clause)) {
        for (const n of exportedNames(target)) used.get(target)!.add(n) // import * as ns
        continue
      }
      const names = (clause?.elements ?? []).map((e) => (e.propertyName ?? e.name).text)
      if (ts.isExportDeclaration(st) && indexes.includes(file)) reexports.push({ outer: file, inner: target, names })
      else for (const n of names) used.get(target)!.add(n)
    }
  }
  for (const file of files)
    for (const { target, names } of dynamicImportsOf(file))
      if (indexes.includes(target) && !file.startsWith(`${dirname(target)}/`)) for (const n of names) used.get(target)!.add(n)
  for (let round = 0; round < indexes.length; round++) {
    for (const { outer, inner, names } of reexports) for (const n of names) if (used.get(outer)!.has(n)) used.get(inner)!.add(n)
  }
  return used
}

/** `import('x')` as a call, its relative target. */
function importCallTarget(file: string, node: ts.Node | undefined): string | undefined {
  if (!node || !ts.isCallExpression(node) || node.expression.kind !== ts.SyntaxKind.ImportKeyword) return undefined
  const [arg] = node.arguments
  return arg && ts.isStringLiteralLike(arg) && arg.text.startsWith('.') ? relative(root, resolve(root, dirname(file), arg.text)) : undefined
}

/**
 * The names a file takes from modules it imports when it runs (a command's action, issue 14):
 * `const { a } = await import('x')`, `const [{ a }, { b }] = await Promise.all([import('x'), import('y')])`
 * and `(await import('x')).a`.
 */
function dynamicImportsOf(file: string): { target: string; names: string[] }[] {
  const found: { target: string; names: string[] }[] = []
  const bound = (pattern: ts.BindingName) =>
    ts.isObjectBindingPattern(pattern) ? pattern.elements.map((e) => ((e.propertyName ?? e.name) as ts.Identifier).text) : []
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && node.initializer && ts.isAwaitExpression(node.initializer)) {
      const awaited = node.initializer.expression
      const single = importCallTarget(file, awaited)
      if (single) found.push({ target: single, names: bound(node.name) })
      else if (ts.isArrayBindingPattern(node.name) && ts.isCallExpression(awaited) && awaited.arguments[0]) {
        const list = awaited.arguments[0]
        if (ts.isArrayLiteralExpression(list))
          node.name.elements.forEach((element, i) => {
            const target = importCallTarget(file, list.elements[i])
            if (target && ts.isBindingElement(element)) found.push({ target, names: bound(element.name) })
          })
      }
    } else if (ts.isPropertyAccessExpression(node) && ts.isParenthesizedExpression(node.expression)) {
      const inner = node.expression.expression
      const target = ts.isAwaitExpression(inner) ? importCallTarget(file, inner.expression) : undefined
      if (target) found.push({ target, names: [node.name.text] })
    }
    ts.forEachChild(node, visit)
  }
  visit(parsed.get(file)!)
  return found
}

describe('index files', () => {
  it('are found, and other folders import from them (the check below is not vacuous)', () => {
    expect(indexes).toEqual(expect.arrayContaining(['broker/index.ts', 'certs/index.ts', 'provisioning/index.ts', 'device-sim/index.ts']))
    expect([...usedOutside().get('provisioning/index.ts')!]).toContain('openControlPlane')
  })

  it('export only what files outside their folder import (tests import module files directly)', () => {
    const used = usedOutside()
    const unused = indexes.flatMap((i) =>
      exportedNames(i)
        .filter((n) => !used.get(i)!.has(n))
        .map((n) => `${i}: ${n}`),
    )
    expect(unused).toEqual([])
  })
})
