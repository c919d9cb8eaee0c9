import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { describe, expect, it, onTestFinished } from 'vitest'
import { buildProgram } from '../../../cli.ts'
import { GATEHOUSE_BIN, runCli, spawnCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/** Every runnable command, as `gatehouse a b`, with whether it takes --json. */
function leafCommands(cmd: Command, prefix = ''): { name: string; json: boolean }[] {
  return cmd.commands.flatMap((sub) => {
    const name = `${prefix} ${sub.name()}`.trim()
    return sub.commands.length ? leafCommands(sub, name) : [{ name, json: sub.options.some((o) => o.long === '--json') }]
  })
}

async function initialised() {
  const dataDir = join(tempDir(), 'data')
  expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
  return dataDir
}

/** The one JSON error line on stderr. */
function jsonError(stderr: string): { code: string; message: string } {
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  const parsed = JSON.parse(lines[0] as string)
  expect(Object.keys(parsed).sort()).toEqual(['code', 'message'])
  return parsed
}

describe('gatehouse --json', () => {
  it('is an option of every command', async () => {
    const commands = leafCommands(await buildProgram({ out: () => {}, err: () => {}, isTty: false, env: {} }))
    expect(commands.length).toBeGreaterThan(25)
    expect(commands.filter((c) => !c.json).map((c) => c.name)).toEqual([])
  })

  it('turns an error into {"code","message"} on stderr with the exit code of the text form, for failures, usage and configuration', async () => {
    const dataDir = await initialised()
    const cases: [string[], NodeJS.ProcessEnv, number, string][] = [
      [['device', 'show', 'ghost'], {}, 1, 'GH_DEVICE_NOT_FOUND'],
      [['apikey', 'revoke', 'ghost'], {}, 1, 'GH_API_KEY_NOT_FOUND'],
      [['device', 'list', '--bogus'], {}, 2, 'GH_CLI_USAGE'],
      [['device', 'list', '--limit', 'many'], {}, 2, 'GH_CLI_USAGE'],
      [['device', 'list'], { GATEHOUSE_MQTT_PORT: 'x' }, 2, 'GH_CONFIG_INVALID'],
    ]
    for (const [args, env, exit, code] of cases) {
      const text = await runCli([...args, '--data-dir', dataDir], env)
      const json = await runCli([...args, '--data-dir', dataDir, '--json'], env)
      expect(json.code, args.join(' ')).toBe(exit)
      expect(text.code, args.join(' ')).toBe(exit)
      expect(json.stdout).toBe('')
      const err = jsonError(json.stderr)
      expect(err.code, args.join(' ')).toBe(code)
      expect(err.message.length).toBeGreaterThan(5)
      expect(text.stderr).not.toMatch(/^\{/)
    }
  })

  it('prints settings schema set and get as JSON', async () => {
    const dataDir = await initialised()
    const file = join(tempDir(), 'schema.json')
    const schema = { type: 'object', properties: { rate: { type: 'integer' } } }
    writeFileSync(file, JSON.stringify(schema))
    const set = await runCli(['settings', 'schema', 'set', file, '--group', 'pumps', '--json', '--data-dir', dataDir])
    expect(set.code, set.stderr).toBe(0)
    expect(JSON.parse(set.stdout)).toEqual({ group: 'pumps', schema })
    const get = await runCli(['settings', 'schema', 'get', '--group', 'pumps', '--json', '--data-dir', dataDir])
    expect(JSON.parse(get.stdout)).toEqual(schema)
    const bad = await runCli([
      'settings',
      'schema',
      'set',
      join(tempDir(), 'missing.json'),
      '--group',
      'pumps',
      '--json',
      '--data-dir',
      dataDir,
    ])
    expect(bad.code).toBe(1)
    expect(jsonError(bad.stderr).code).toBe('GH_FILE_UNREADABLE')
  })

  it('start --json says where it listens as one JSON line, and its errors are JSON too', async () => {
    const dataDir = join(tempDir(), 'data')
    const child = spawn(
      process.execPath,
      [GATEHOUSE_BIN, 'start', '--json', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    onTestFinished(() => void (child.exitCode === null && child.kill('SIGKILL')))
    const line = await new Promise<string>((resolve, reject) => {
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
        if (stderr.includes('\n')) resolve(stderr.split('\n')[0] as string)
      })
      child.once('exit', (code) => reject(new Error(`start exited ${code}: ${stderr}`)))
    })
    const started = JSON.parse(line)
    expect(started).toMatchObject({
      mqtt: { host: '127.0.0.1', port: expect.any(Number) },
      http: { url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) },
      metrics: null,
      dataDir,
    })
    expect((await fetch(`${started.http.url}/openapi.json`)).status).toBe(200) // the API it named answers
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)

    const refused = await spawnCli(['start', '--json', '--data-dir', dataDir, '--mqtt-port', '70000'])
    expect(refused.code).toBe(2)
    expect(jsonError(refused.stderr).code).toBe('GH_CONFIG_INVALID')
  })
})
