#!/usr/bin/env node
// `npm run build` (and npm's `prepare`, so `npm install` / `npm ci` build too): compiles the TypeScript
// sources to dist/ with tsc, then copies what the code reads from disk by path at run time (the dashboard's
// assets, package.json's version) and writes the JSON Schema validators the code declares as ajv's standalone
// code with V8's code cache of each (dist/validators/, certs/prebuilt-validators.ts), so a CLI call compiles no schema. Then it bundles the
// compiled CLI into dist/bundle/ (esbuild), which `gatehouse` runs: Node loads a few dozen chunks instead of
// ~130 modules one by one (issue 14). dist/package.json is written last with the time the build STARTED, so
// a source edited during the build leaves dist/ older than the sources (bin/gatehouse.js checks).
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = join(import.meta.dirname, '..')
const dist = join(root, 'dist')
const started = new Date()
rmSync(dist, { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
cpSync(join(root, 'provisioning/dashboard/assets'), join(dist, 'provisioning/dashboard/assets'), { recursive: true })
await writeValidators()
const { name, version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const packageJson = `${JSON.stringify({ name, version, type: 'module', private: true }, null, 2)}\n`
await bundle()
const stamp = join(dist, 'package.json')
writeFileSync(stamp, packageJson)
utimesSync(stamp, started, started)

/**
 * dist/bundle/: the compiled CLI (dist/cli.js) bundled by esbuild, ESM for Node 20, every chunk in the one
 * folder. Code splitting keeps each `await import()` a chunk of its own that loads only when reached, so a
 * command still loads only what it needs (docs/conventions.md §2). Packages stay in node_modules: native
 * ones (better-sqlite3, pkcs11) cannot be bundled, and a package then loads exactly as from dist/.
 * A module that reads a file by path finds it from its own URL (docs/conventions.md §40), and every chunk's
 * URL is dist/bundle/<chunk>.js: so the files are put where those paths lead from there too: package.json
 * and the dashboard's assets beside the chunks; ../validators/ is dist/validators/ already.
 */
async function bundle() {
  const { build } = await import('esbuild')
  const out = join(dist, 'bundle')
  const { metafile } = await build({
    entryPoints: [join(dist, 'cli.js')],
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    chunkNames: 'chunk-[hash]',
    metafile: true,
    absWorkingDir: root,
    logLevel: 'warning',
  })
  // which compiled modules each chunk holds, by path in dist/: test/integration/cli/lazy-loading.test.ts reads it
  const modules = Object.fromEntries(
    Object.entries(metafile.outputs).map(([file, { inputs }]) => [
      file.slice('dist/bundle/'.length),
      Object.keys(inputs).map((m) => m.slice('dist/'.length)),
    ]),
  )
  writeFileSync(join(out, 'modules.json'), `${JSON.stringify(modules, null, 1)}\n`)
  writeFileSync(join(out, 'package.json'), packageJson)
  cpSync(join(root, 'provisioning/dashboard/assets'), join(out, 'assets'), { recursive: true })
}

/** Every validator declared by the modules a CLI call or the broker loads (certs/prebuilt-validators.ts). */
async function writeValidators() {
  const load = (file) => import(pathToFileURL(join(dist, file)).href)
  // declaring happens when a module loads: config.js reaches every plane's option schemas, provisioning the rest
  await load('config.js')
  await load('provisioning/index.js')
  const { codeCache, declaredValidators, standaloneModule } = await load('certs/prebuilt-validators.js')
  const dir = join(dist, 'validators')
  mkdirSync(dir, { recursive: true })
  for (const v of declaredValidators()) {
    writeFileSync(join(dir, `${v.name}.cjs`), standaloneModule(v))
    writeFileSync(join(dir, `${v.name}.v8`), codeCache(join(dir, `${v.name}.cjs`)))
  }
}
