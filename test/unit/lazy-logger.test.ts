import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')

/** Runs `body` in its own Node process with createLazyLogger imported; `loaded()` says whether pino is loaded. */
function run(body: string): Promise<{ stdout: string; stderr: string }> {
  const script = `import { createRequire } from 'node:module'
const { createLazyLogger } = await import(${JSON.stringify(resolve(root, 'logger.ts'))})
const cache = createRequire(process.cwd() + '/').cache
const loaded = () => Object.keys(cache).some((f) => f.includes('/node_modules/pino/'))
${body}`
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root, timeout: 30_000 },
      (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : done({ stdout, stderr })),
    ),
  )
}

describe('createLazyLogger (issue 14: a command that logs nothing loads no pino)', () => {
  it('loads pino on the first line at its level, not before, and writes that line with its bindings', async () => {
    const { stdout, stderr } = await run(`
const log = createLazyLogger({ level: 'warn', format: 'json' }).child({ dataDir: '/d' }).child({ module: 'm' })
log.info('below the level'); log.debug({ a: 1 }, 'nor this')
console.log('before', loaded(), log.level, log.isLevelEnabled('info'), log.isLevelEnabled('error'))
log.flush()
log.warn({ n: 1 }, 'first line')
console.log('after', loaded())
log.flush()`)
    expect(stdout).toContain('before false warn false true')
    expect(stdout).toContain('after true')
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 40, msg: 'first line', n: 1, dataDir: '/d', module: 'm' })
  })

  it('redacts secrets as the pino root does, and an unknown level fails at once as before', async () => {
    const { stdout, stderr } = await run(`
createLazyLogger({ level: 'info', format: 'json' }).child({ x: 1 }).error({ password: 'hunter2' }, 'oops')
try { createLazyLogger({ level: 'verbose' }) } catch (err) { console.log('threw', loaded(), err.message) }`)
    expect(stderr).toContain('"password":"[redacted]"')
    expect(stderr).not.toContain('hunter2')
    expect(stdout).toMatch(/^threw true .*verbose/m)
  })
})
