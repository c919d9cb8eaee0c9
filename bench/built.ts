import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'

const BIN = resolve(import.meta.dirname, '../bin/gatehouse.js')

/**
 * Builds dist/ (`npm run build`) when it is missing or older than the sources, as bin/gatehouse.js judges it:
 * the benchmarks measure the compiled code Gatehouse ships, not the sources through tsx.
 */
export function ensureBuilt(): void {
  if (spawnSync(process.execPath, [BIN, '--version'], { env: { ...process.env, GATEHOUSE_CLI: 'dist' } }).status === 0) return
  console.log('building dist/ (npm run build)')
  const build = spawnSync(process.execPath, [resolve(import.meta.dirname, '../bin/build.js')], { stdio: 'inherit' })
  if (build.status !== 0) throw new Error('npm run build failed')
}
