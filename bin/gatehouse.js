#!/usr/bin/env node
// Entry point for the `gatehouse` command. Runs the compiled JavaScript bundled in dist/bundle/ (`npm run build`,
// run by `npm install` / `npm ci` through `prepare`): starting TypeScript through tsx costs about a second per call.
// dist/ is used only when it is at least as new as every source file, so an edited checkout never runs
// old code: then the sources run through tsx, as before (with a note on a terminal: `npm run build`).
// GATEHOUSE_CLI=dist insists on dist/ (an error when it is missing or stale); GATEHOUSE_CLI=tsx on the sources.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const SOURCE_DIRS = ['broker', 'provisioning', 'certs', 'device-sim']

/** The newest modification time among the sources dist/ is built from (a few hundred stat calls). */
function newestSource() {
  let newest = 0
  const see = (path) => {
    const m = statSync(path).mtimeMs
    if (m > newest) newest = m
  }
  for (const name of readdirSync(root))
    if (name.endsWith('.ts') || name === 'package.json' || name === 'tsconfig.json') see(join(root, name))
  for (const dir of SOURCE_DIRS)
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true }))
      if (entry.isFile()) see(join(entry.parentPath, entry.name))
  return newest
}

/** Why dist/ cannot run, or undefined when it is current. */
function distProblem() {
  let built
  try {
    built = statSync(join(root, 'dist/package.json')).mtimeMs
  } catch {
    return 'dist/ is missing'
  }
  return newestSource() > built ? 'dist/ is older than the sources' : undefined
}

const mode = process.env.GATEHOUSE_CLI
const problem = mode === 'tsx' ? 'GATEHOUSE_CLI=tsx' : distProblem()
let main
if (problem === undefined) main = (await import('../dist/bundle/cli.js')).main
else if (mode === 'dist') {
  process.stderr.write(`error: GATEHOUSE_CLI=dist but ${problem}: run \`npm run build\`\n`)
  process.exit(2)
} else {
  if (mode !== 'tsx' && process.stderr.isTTY)
    process.stderr.write(`gatehouse: ${problem}; running the TypeScript sources through tsx (slower): run \`npm run build\`\n`)
  const { register } = await import('tsx/esm/api')
  register()
  main = (await import('../cli.ts')).main
}
process.exitCode = await main(process.argv)
