import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { GATEHOUSE_BIN, runCli } from '../../helpers/run-cli.ts'

const root = resolve(import.meta.dirname, '../../..')
// a resolve hook that names every package a module resolves to, and every module of Gatehouse, on stderr
const HOOK = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module'
register('data:text/javascript,' + encodeURIComponent("export async function resolve(s, c, next) { const r = await next(s, c); const m = /node_modules\\\\/((?:@[^/]+\\\\/)?[^/]+)/.exec(r.url); if (m) process.stderr.write('package ' + m[1] + '\\\\n'); else if (r.url.startsWith('file://${root}/')) process.stderr.write('module ' + r.url.slice(${root.length + 8}) + '\\\\n'); return r }"))`,
)}`

/** The packages loaded by one CLI call, made in its own process like an operator's. */
async function packagesLoadedBy(args: string[]): Promise<Set<string>> {
  return (await loadedBy(args)).packages
}

/**
 * The packages and the modules of Gatehouse (source paths from the repository) loaded by one CLI call. With
 * GATEHOUSE_CLI=dist (`npm run test:cli-dist`) the call is the bundled CLI that `gatehouse` runs: a chunk of
 * dist/bundle/ that loads stands for the modules it holds (dist/bundle/modules.json, written by the build).
 */
function loadedBy(args: string[]): Promise<{ packages: Set<string>; modules: Set<string> }> {
  const bundled = process.env.GATEHOUSE_CLI === 'dist'
  const script = `const { main } = await import(${JSON.stringify(resolve(root, 'cli.ts'))}); process.exitCode = await main(['node', 'gatehouse', ...${JSON.stringify(args)}])`
  const argv = bundled
    ? ['--import', HOOK, GATEHOUSE_BIN, ...args]
    : ['--import', 'tsx', '--import', HOOK, '--input-type=module', '-e', script]
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      argv,
      {
        cwd: root,
        env: { PATH: process.env.PATH, GATEHOUSE_LOG_LEVEL: 'silent', GATEHOUSE_CLI: bundled ? 'dist' : 'tsx' },
        timeout: 60_000,
      },
      (err, _stdout, stderr) => {
        if (err) return fail(new Error(`${err.message}\n${stderr}`))
        const modules = [...stderr.matchAll(/^module (\S+)$/gm)].map((m) => m[1] as string)
        done({
          packages: new Set([...stderr.matchAll(/^package (\S+)$/gm)].map((m) => m[1] as string)),
          modules: new Set(bundled ? modulesOfChunks(modules) : modules),
        })
      },
    ),
  )
}

/** The source modules held by the chunks of dist/bundle/ among `files` (bin/gatehouse.js itself is left out). */
function modulesOfChunks(files: string[]): string[] {
  const chunks: Record<string, string[]> = JSON.parse(readFileSync(join(root, 'dist/bundle/modules.json'), 'utf8'))
  return files.flatMap((file) => {
    if (file === 'bin/gatehouse.js') return []
    const held = file.startsWith('dist/bundle/') ? chunks[file.slice('dist/bundle/'.length)] : undefined
    if (!held) throw new Error(`${file} is not a chunk of dist/bundle/`)
    return held.map((m) => m.replace(/\.js$/, '.ts'))
  })
}

describe('a CLI call loads only what its command needs (issue 14)', () => {
  it('--version loads neither the data plane nor the HTTP API, HSM, metrics or dev tools', async () => {
    const loaded = await packagesLoadedBy(['--version'])
    expect(loaded.has('commander')).toBe(true) // the hook sees packages: the check below is not vacuous
    const heavy = ['aedes', 'ws', 'ioredis', 'mqemitter-redis', 'rate-limiter-flexible', 'fastify', 'prom-client', 'node-webcrypto-p11']
    expect(heavy.filter((p) => loaded.has(p))).toEqual([])
    expect([...loaded].filter((p) => p.startsWith('@asyncapi') || p.startsWith('playwright'))).toEqual([])
  })

  it('--version loads no command module, configuration, control plane or certs/: only the command table', async () => {
    const { modules } = await loadedBy(['--version'])
    expect(modules.has('provisioning/cli/command-table.ts')).toBe(true) // the hook sees Gatehouse's modules
    expect([...modules].sort()).toEqual(
      [
        'cli.ts',
        'device-sim/cli.ts',
        'logger.ts',
        'provisioning/cli/cli-deps.ts',
        'provisioning/cli/command-table.ts',
        'provisioning/cli/index.ts',
        'provisioning/errors.ts',
      ].sort(),
    )
  })

  it('device list loads its own command module and the control plane, not the broker, the AI bridge or the HTTP API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-lazy-'))
    try {
      expect((await runCli(['init', '--data-dir', dir])).code).toBe(0)
      const { packages, modules } = await loadedBy(['device', 'list', '--data-dir', dir])
      expect(modules.has('provisioning/control-plane.ts')).toBe(true)
      expect([...modules].filter((m) => m.startsWith('provisioning/cli/')).sort()).toEqual([
        'provisioning/cli/cli-deps.ts',
        'provisioning/cli/command-table.ts',
        'provisioning/cli/device-list.ts',
        'provisioning/cli/index.ts',
      ])
      // of broker/, only the option schemas the configuration embeds (broker/options.ts): not the broker, nor the AI bridge
      expect(modules.has('broker/options.ts')).toBe(true)
      expect(modules.has('broker/index.ts')).toBe(false)
      expect([...modules].filter((m) => m.startsWith('broker/ai-bridge/') && m !== 'broker/ai-bridge/options.ts')).toEqual([])
      expect(modules.has('gatehouse.ts')).toBe(false)
      // nor the HTTP API (fastify), the cluster, metrics, PostgreSQL, MQTT or the HSM
      const heavy = ['aedes', 'ws', 'ioredis', 'mqemitter-redis', 'fastify', 'prom-client', 'pg', 'mqtt', 'node-webcrypto-p11']
      expect(heavy.filter((p) => packages.has(p))).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

// counts, on exit, the CommonJS modules of ajv that were loaded (ajv is CommonJS: its files are in require's cache),
// but for its run-time helpers (ajv/dist/runtime/), which the built validators require as ajv's compiled ones do;
// and those of node-forge and @peculiar/x509 (their CommonJS builds are what Node resolves), pino and pino-pretty
const AJV_PROBE = `data:text/javascript,${encodeURIComponent(
  `import { createRequire } from 'node:module'
const cache = createRequire(process.cwd() + '/').cache
const count = (part) => Object.keys(cache).filter((f) => f.includes(part)).length
process.on('exit', () => process.stderr.write('ajv files ' + Object.keys(cache).filter((f) => f.includes('/node_modules/ajv/') && !f.includes('/ajv/dist/runtime/')).length + '\\n' + 'forge files ' + count('/node_modules/node-forge/') + '\\n' + 'x509 files ' + count('/node_modules/@peculiar/x509/') + '\\n' + 'pino files ' + count('/node_modules/pino/') + '\\n' + 'pretty files ' + count('/node_modules/pino-pretty/') + '\\n'))`,
)}`

describe('the compiled CLI compiles no JSON Schema (npm run test:cli-dist)', () => {
  it.runIf(process.env.GATEHOUSE_CLI === 'dist')(
    'device list validates its configuration with the validator built into dist/, without ajv or node-forge',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-lazy-'))
      try {
        expect((await runCli(['init', '--data-dir', dir])).code).toBe(0)
        // `device list` unless other arguments are given
        const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
          new Promise<{ code: number; stderr: string }>((done) =>
            execFile(
              process.execPath,
              ['--import', AJV_PROBE, GATEHOUSE_BIN, ...(args.length ? args : ['device', 'list', '--data-dir', dir])],
              { env: { PATH: process.env.PATH, GATEHOUSE_CLI: 'dist', GATEHOUSE_LOG_LEVEL: 'silent', ...env }, timeout: 30_000 },
              (err, _stdout, stderr) => done({ code: err ? 1 : 0, stderr }),
            ),
          )
        const ok = await run([])
        expect(ok).toMatchObject({ code: 0 })
        expect(ok.stderr).toMatch(/^ajv files 0$/m)
        // nor node-forge, which only a PKCS#12 bundle needs
        expect(ok.stderr).toMatch(/^forge files 0$/m)
        // nor @peculiar/x509: listing devices signs nothing and reads no certificate in depth (issue 14)
        expect(ok.stderr).toMatch(/^x509 files 0$/m)
        // the log goes to a pipe, not a terminal: pino-pretty is not loaded (issue 14)
        expect(ok.stderr).toMatch(/^pretty files 0$/m)
        // the probe sees @peculiar/x509 when a command parses a certificate in depth: issuing one does
        const created = await run(['device', 'create', 'probe-1', '--data-dir', dir, '--out', join(dir, 'bundles')])
        expect(created).toMatchObject({ code: 0 })
        expect(created.stderr).not.toMatch(/^x509 files 0$/m)
        expect(created.stderr).toMatch(/^x509 files [1-9]/m)
        expect((await run([])).stderr).toMatch(/^x509 files 0$/m)
        // nor after `ca rotate`, which leaves a previous issuing CA that every load of the CA reads (issue 14)
        expect(await run(['ca', 'rotate', '--data-dir', dir])).toMatchObject({ code: 0 })
        expect(readdirSync(join(dir, 'ca', 'previous'))).toHaveLength(1)
        expect((await run([])).stderr).toMatch(/^x509 files 0$/m)
        // nor pino itself at the default level: listing and showing devices log nothing (createLazyLogger, issue 14)
        for (const args of [[], ['device', 'show', 'probe-1', '--data-dir', dir]]) {
          const quiet = await run(args, { GATEHOUSE_LOG_LEVEL: undefined })
          expect(quiet).toMatchObject({ code: 0 })
          expect(quiet.stderr).toMatch(/^pino files 0$/m)
        }
        // the probe sees ajv when it is loaded: a bad value in the environment is still reported as before
        const bad = await run([], { GATEHOUSE_MQTT_PORT: 'x' })
        expect(bad.stderr).toMatch(/GH_CONFIG_INVALID.*mqttPort must be integer/)
        expect(bad.stderr).toMatch(/^ajv files 0$/m)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )

  it.runIf(process.env.GATEHOUSE_CLI === 'dist')(
    '--version and --help load no @peculiar/x509, node-forge, ajv compiler or logger',
    async () => {
      for (const args of [['--version'], ['--help']]) {
        const stderr = await new Promise<string>((done, fail) =>
          execFile(
            process.execPath,
            ['--import', AJV_PROBE, GATEHOUSE_BIN, ...args],
            { env: { PATH: process.env.PATH, GATEHOUSE_CLI: 'dist' }, timeout: 30_000 },
            (err, _stdout, stderr) => (err ? fail(err) : done(stderr)),
          ),
        )
        expect(stderr).toMatch(/^ajv files 0\nforge files 0\nx509 files 0\npino files 0\npretty files 0$/m)
      }
    },
  )
})
