import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../../..')
const CLUSTER_PACKAGES = ['ioredis', 'mqemitter-redis', 'msgpack-lite', 'aedes-persistence-redis', 'rate-limiter-flexible']

/** The packages in the CommonJS module cache of a fresh process once it has imported `module` (through tsx). */
function packagesAfterImporting(module: string): Promise<string[]> {
  const script = `await import(${JSON.stringify(resolve(root, module))})
const { createRequire } = await import('node:module')
const names = Object.keys(createRequire(import.meta.url).cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1])
process.stdout.write(JSON.stringify([...new Set(names.filter(Boolean))]))`
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root, env: { PATH: process.env.PATH }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : done(JSON.parse(stdout) as string[])),
    ),
  )
}

describe('the cluster stack is loaded only by a cluster connect (issue 14: idle RSS)', () => {
  it('importing the composition root (gatehouse.ts) loads no Redis, pub/sub or cluster rate-limit package', async () => {
    const loaded = await packagesAfterImporting('gatehouse.ts')
    expect(loaded).toContain('better-sqlite3') // the probe sees CommonJS packages
    expect(loaded.filter((p) => CLUSTER_PACKAGES.includes(p))).toEqual([])
  }, 60_000)
})
