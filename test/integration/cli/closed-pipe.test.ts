import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dataDirLayout } from '../../../provisioning/data-dir/layout.ts'
import { openRegistry } from '../../../provisioning/store/open-registry.ts'
import { GATEHOUSE_BIN, runCli } from '../../helpers/run-cli.ts'

/** Enough devices (and audit entries) that a listing is many times a pipe's buffer (64 KiB): the CLI is still writing when its reader leaves. */
const ROWS = 6000

interface Closed {
  code: number | null
  signal: NodeJS.Signals | null
  firstLine: string
  stderr: string
}

/** The real `gatehouse` with stderr on a pipe whose reader has gone (`gatehouse … 2>&1 | head -0`); logging at `logLevel`. */
function withStderrGone(args: string[], logLevel: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_CLI: process.env.GATEHOUSE_CLI, GATEHOUSE_LOG_LEVEL: logLevel },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stderr.destroy()
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => void (stdout += d.toString()))
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout })))
}

/**
 * The real `gatehouse` with stdout on a pipe whose reader goes away as `head -1` does: after the first line
 * (`readFirstLine`), or before the command has written anything.
 */
function withReaderGone(args: string[], readFirstLine: boolean): Promise<Closed> {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_CLI: process.env.GATEHOUSE_CLI, GATEHOUSE_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()))
  let firstLine = ''
  if (readFirstLine) {
    // paused mode: this side reads no more than a stream's buffer, so the CLI is left blocked on a full pipe
    let seen = ''
    const readLine = () => {
      for (let chunk = child.stdout.read(); chunk !== null && !seen.includes('\n'); chunk = child.stdout.read()) seen += chunk.toString()
      if (!seen.includes('\n')) return
      firstLine = seen.slice(0, seen.indexOf('\n'))
      child.stdout.off('readable', readLine)
      child.stdout.destroy()
    }
    child.stdout.on('readable', readLine)
  } else child.stdout.destroy()
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, firstLine, stderr })))
}

describe('a CLI listing whose reader goes away (`gatehouse device list | head -1`, issue 14)', () => {
  let dir: string
  let dataDir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-pipe-'))
    dataDir = join(dir, 'data')
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    // rows straight into the registry: a listing needs devices, not their certificates
    const store = await openRegistry(dataDirLayout(dataDir).database, undefined)
    try {
      const at = new Date('2026-01-01T00:00:00Z')
      await store.transaction(async () => {
        for (let i = 0; i < ROWS; i++) {
          const id = `pipe-${String(i).padStart(5, '0')}`
          await store.insertDevice({ id, group: 'fleet', tier: 'standard', status: 'active', createdAt: at, updatedAt: at })
          await store.appendAudit({ at, actor: 'test', action: 'device.created', subject: id, details: { group: 'fleet' } })
        }
      })
    } finally {
      await store.close()
    }
  }, 60_000)

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.each([
    ['device list', ['device', 'list'], /^ID\s+GROUP/],
    ['device list --json', ['device', 'list', '--json'], /^\[$/],
    ['audit', ['audit', '--limit', String(ROWS)], /\S/],
  ])('%s ends quietly with exit 0 after the first line was read and the pipe closed', async (_name, args, first) => {
    const closed = await withReaderGone([...args, '--data-dir', dataDir], true)
    expect(closed.firstLine).toMatch(first)
    expect(closed.stderr).toBe('') // no EPIPE, no stack
    expect(closed).toMatchObject({ code: 0, signal: null })
  })

  it('device show --json ends quietly with exit 0 when the pipe closed before it wrote', async () => {
    const closed = await withReaderGone(['device', 'show', 'pipe-00001', '--json', '--data-dir', dataDir], false)
    expect(closed.stderr).toBe('')
    expect(closed).toMatchObject({ code: 0, signal: null })
  })

  // pino's destination (SonicBoom) stops writing after EPIPE, and the CLI's io.err drops what follows it
  it('ca rotate, logging at debug to a closed stderr, ends with exit 0, its whole report on stdout and the CA rotated', async () => {
    const before = (await runCli(['ca', 'show', '--json', '--data-dir', dataDir])).stdout
    const closed = await withStderrGone(['ca', 'rotate', '--data-dir', dataDir], 'debug')
    expect(closed).toMatchObject({ code: 0, signal: null })
    expect(closed.stdout).toMatch(/^rotated the issuing CA\n[\s\S]*a running `gatehouse start` switches to it/)
    const issuing = (json: string) => (JSON.parse(json) as { issuing: { serial: string } }).issuing.serial
    expect(issuing((await runCli(['ca', 'show', '--json', '--data-dir', dataDir])).stdout)).not.toBe(issuing(before))
  })

  it('a command refused with a usage error, with stderr closed, keeps its exit code (2) instead of crashing (1)', async () => {
    const closed = await withStderrGone(['device', 'show', 'pipe-00001', '--no-such-flag', '--data-dir', dataDir], 'debug')
    expect(closed).toMatchObject({ code: 2, signal: null, stdout: '' })
  })

  it('changed nothing: the registry holds the same devices', async () => {
    const store = await openRegistry(dataDirLayout(dataDir).database, undefined)
    try {
      expect(await store.countDevices()).toBe(ROWS)
    } finally {
      await store.close()
    }
  })
})
