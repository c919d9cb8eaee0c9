#!/usr/bin/env node
// `npm run build` (and npm's `prepare`, so `npm install` / `npm ci` build too): compiles the TypeScript
// sources to dist/ with tsc, then copies what the code reads from disk by path at run time (the dashboard's
// assets, package.json's version) and writes the JSON Schema validators the code declares as ajv's standalone
// code (dist/validators/, certs/prebuilt-validators.ts), so a CLI call compiles no schema. dist/package.json is written last with the time the build STARTED, so
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
const stamp = join(dist, 'package.json')
writeFileSync(stamp, `${JSON.stringify({ name, version, type: 'module', private: true }, null, 2)}\n`)
utimesSync(stamp, started, started)

/** Every validator declared by the modules a CLI call or the broker loads (certs/prebuilt-validators.ts). */
async function writeValidators() {
  const load = (file) => import(pathToFileURL(join(dist, file)).href)
  // declaring happens when a module loads: config.js reaches every plane's option schemas, provisioning the rest
  await load('config.js')
  await load('provisioning/index.js')
  const { declaredValidators, standaloneModule } = await load('certs/prebuilt-validators.js')
  const dir = join(dist, 'validators')
  mkdirSync(dir, { recursive: true })
  for (const v of declaredValidators()) writeFileSync(join(dir, `${v.name}.cjs`), standaloneModule(v))
}
