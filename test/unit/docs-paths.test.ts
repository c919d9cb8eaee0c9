import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// Every repository path that a comment or a Markdown file names must exist (docs/conventions.md §28).
// What counts as a repository path:
// - a word whose first segment is a top-level entry of the repository (`broker/limits.ts`, `docs/api.md`,
//   `test/helpers/clock.ts`, `gatehouse.ts`, `.ci/run`); runtime paths such as `data/ca/root.crt` or
//   `server/server.crt` start with no such entry and are not checked;
// - a bare upper-case Markdown name (`README.md`): it names a file at the root;
// - a word starting with `../`, and a Markdown link target: relative to the file that names it.
// Not checked: URLs, paths right after another project's name in the possessive (aedes' test/helper.js),
// and what lies under a path that .gitignore lists (bench/results/ is written by the benchmarks).
// A segment with a wildcard or placeholder (`test/unit/**`, `devices/{id}/telemetry`, `store/...`) ends
// the path: what comes before it must exist.
const root = resolve(import.meta.dirname, '../..')

const ignored = readFileSync(join(root, '.gitignore'), 'utf8')
  .split('\n')
  .map((line) => line.trim().replace(/^\/|\/$/g, ''))
  .filter((line) => line !== '' && !line.startsWith('#') && !/[*?[]/.test(line))

const isIgnored = (path: string) => ignored.some((i) => path === i || path.startsWith(`${i}/`))

const topLevel = new Set(readdirSync(root).filter((name) => name !== '.git' && !isIgnored(name)))

function files(dir = ''): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = dir === '' ? name : `${dir}/${name}`
    if (name === '.git' || isIgnored(path)) return []
    return statSync(join(root, path)).isDirectory() ? files(path) : [path]
  })
}

/** The text of every comment in a TypeScript file (each token's leading and trailing comments). */
function commentsOf(text: string): string[] {
  const source = ts.createSourceFile('file.ts', text, ts.ScriptTarget.Latest, true)
  const seen = new Set<number>()
  const found: string[] = []
  const collect = (ranges: ts.CommentRange[] | undefined) => {
    for (const r of ranges ?? []) {
      if (seen.has(r.pos)) continue
      seen.add(r.pos)
      found.push(text.slice(r.pos, r.end))
    }
  }
  const visit = (node: ts.Node) => {
    collect(ts.getLeadingCommentRanges(text, node.pos))
    collect(ts.getTrailingCommentRanges(text, node.end))
    for (const child of node.getChildren(source)) visit(child)
  }
  visit(source)
  return found
}

const PLACEHOLDER = /[*{}<>…]|^\.\.\.$/
const WORD = /(?<![\w@.:/\\$-])(?:\.\.?\/)*[\w.@-]+(?:\/[\w.@*{}<>…-]*)*/g
const POSSESSIVE = /\w's? $/
const LINK_TARGET = /\]\(([^)\s#]+)(?:#[^)\s]*)?\)/g

/** The path without its trailing sentence dot and without what follows a wildcard or placeholder segment. */
function trimmed(word: string): string {
  const segments = word.replace(/\.+$/, '').split('/')
  const cut = segments.findIndex((s) => PLACEHOLDER.test(s))
  return (cut === -1 ? segments : segments.slice(0, cut)).join('/').replace(/\/$/, '')
}

/** Where a word points in the repository (relative to the root), or null when it names no repository path. */
function target(word: string, file: string, isLink: boolean): string | null {
  if (isLink && /^[a-z][a-z0-9+.-]*:/i.test(word)) return null
  const path = trimmed(word)
  if (path === '' || path === '.' || path === '..') return null
  if (word.startsWith('../') || (isLink && !path.startsWith('/'))) return relative(root, resolve(root, dirname(file), path))
  const plain = path.replace(/^(\.\/)+/, '')
  const first = plain.split('/')[0] as string
  if (topLevel.has(first) && (plain.includes('/') || /\.\w+$/.test(plain))) return plain
  if (/^[A-Z][A-Z0-9_-]*\.md$/.test(plain)) return plain
  return null
}

/** Repository paths named in `text` (a comment, or a whole Markdown file) of `file` that do not exist. */
function missingPaths(file: string, text: string): string[] {
  const targets: string[] = []
  for (const m of text.matchAll(WORD)) {
    if (POSSESSIVE.test(text.slice(Math.max(0, m.index - 8), m.index))) continue
    const t = target(m[0], file, false)
    if (t !== null) targets.push(t)
  }
  if (file.endsWith('.md')) {
    for (const m of text.matchAll(LINK_TARGET)) {
      const t = target(m[1] as string, file, true)
      if (t !== null) targets.push(t)
    }
  }
  return targets.filter((t) => t.startsWith('..') || (!isIgnored(t) && !existsSync(join(root, t))))
}

/** Missing paths named in a Markdown file, or in the comments of a TypeScript file. */
function missingIn(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8')
  const anywhere = missingPaths(file, text)
  // a comment is part of the text: only a file that names a missing path somewhere needs parsing
  if (file.endsWith('.md') || anywhere.length === 0) return anywhere
  return commentsOf(text).flatMap((comment) => missingPaths(file, comment))
}

const checked = files().filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.md'))

describe('repository paths named in comments and docs', () => {
  it('reads the comments of the TypeScript files and the Markdown files', () => {
    expect(checked).toContain('README.md')
    expect(checked).toContain('docs/architecture.md')
    expect(checked).toContain('broker/limits.ts')
    expect(commentsOf('const a = 1 // see broker/limits.ts\nfunction f() {\n  g()\n  /* last */\n}\n')).toEqual([
      '// see broker/limits.ts',
      '/* last */',
    ])
  })

  it('recognises a real path and flags a missing one', () => {
    expect(missingPaths('broker/x.ts', '// broker/limits.ts, docs/errors.md, test/helpers/clock.ts and .ci/run exist')).toEqual([])
    expect(missingPaths('broker/x.ts', '// see broker/nowhere.ts and docs/nowhere.md, or NOWHERE.md or ../shared/NOWHERE.md')).toEqual([
      'broker/nowhere.ts',
      'docs/nowhere.md',
      'NOWHERE.md',
      'shared/NOWHERE.md',
    ])
    expect(missingPaths('README.md', 'the plan is in ../shared/PLAN.md')).toEqual(['../shared/PLAN.md'])
    expect(missingPaths('docs/x.md', 'See [the API](api.md), [the README](../README.md) and [gone](gone.md).')).toEqual(['docs/gone.md'])
  })

  it('leaves URLs, runtime paths, patterns, ignored paths and other projects alone', () => {
    const text = [
      'https://github.com/mqttjs/MQTT.js/blob/main/test/abstract_store.js',
      'data/ca/root.crt and server/server.crt, @fastify/error, node:fs/promises',
      'devices/{id}/telemetry, provisioning/<nonce>/request, test/unit/**, provisioning/store/...',
      "bench/results/connect.json, after aedes' test/helper.js.",
    ].join('\n')
    expect(missingPaths('README.md', text)).toEqual([])
  })

  it('finds every named repository path', () => {
    const missing = checked.flatMap((file) => missingIn(file).map((t) => `${file}: ${t}`))
    expect([...new Set(missing)]).toEqual([])
  })
})
