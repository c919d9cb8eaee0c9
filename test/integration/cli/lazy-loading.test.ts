import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../../..')
// a resolve hook that names every package a module resolves to, on stderr
const HOOK = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module'
register('data:text/javascript,' + encodeURIComponent("export async function resolve(s, c, next) { const r = await next(s, c); const m = /node_modules\\\\/((?:@[^/]+\\\\/)?[^/]+)/.exec(r.url); if (m) process.stderr.write('package ' + m[1] + '\\\\n'); return r }"))`,
)}`

/** The packages loaded by one CLI call, made in its own process like an operator's. */
function packagesLoadedBy(args: string[]): Promise<Set<string>> {
  const script = `const { main } = await import(${JSON.stringify(resolve(root, 'cli.ts'))}); process.exitCode = await main(['node', 'gatehouse', ...${JSON.stringify(args)}])`
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', '--import', HOOK, '--input-type=module', '-e', script],
      { cwd: root, env: { PATH: process.env.PATH, GATEHOUSE_LOG_LEVEL: 'silent' }, timeout: 60_000 },
      (err, _stdout, stderr) => {
        if (err) fail(new Error(`${err.message}\n${stderr}`))
        else done(new Set([...stderr.matchAll(/^package (\S+)$/gm)].map((m) => m[1] as string)))
      },
    ),
  )
}

describe('a CLI call loads only what its command needs (issue 14)', () => {
  it('--version loads neither the data plane nor the HTTP API, HSM, metrics or dev tools', async () => {
    const loaded = await packagesLoadedBy(['--version'])
    expect(loaded.has('commander')).toBe(true) // the hook sees packages: the check below is not vacuous
    const heavy = ['aedes', 'ws', 'ioredis', 'mqemitter-redis', 'rate-limiter-flexible', 'fastify', 'prom-client', 'node-webcrypto-p11']
    expect(heavy.filter((p) => loaded.has(p))).toEqual([])
    expect([...loaded].filter((p) => p.startsWith('@asyncapi') || p.startsWith('playwright'))).toEqual([])
  })
})
