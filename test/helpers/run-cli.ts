import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { main } from '../../cli.ts'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs a gatehouse command in this process (fast), with its own env and captured output. With
 * GATEHOUSE_CLI=dist in the test's environment (`npm run test:cli-dist`) it runs the compiled CLI in
 * dist/ as its own process instead, with the same env: the CLI tests then check what npm installs.
 */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  if (process.env.GATEHOUSE_CLI === 'dist') return spawnCli(args, { env: { GATEHOUSE_LOG_LEVEL: 'silent', ...env } })
  let stdout = ''
  let stderr = ''
  const code = await main(['node', 'gatehouse', ...args], {
    out: (s) => void (stdout += s),
    err: (s) => void (stderr += s),
    isTty: false,
    env: { GATEHOUSE_LOG_LEVEL: 'silent', ...env },
  })
  return { code, stdout, stderr }
}

export const GATEHOUSE_BIN = resolve(import.meta.dirname, '../../bin/gatehouse.js')

/** Runs the real `gatehouse` binary (or `bin`, one of a copy of the checkout) in a child process, as an operator would. */
export function spawnCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; bin?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [options.bin ?? GATEHOUSE_BIN, ...args],
      {
        cwd: options.cwd,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_CLI: process.env.GATEHOUSE_CLI, ...options.env },
        timeout: options.timeoutMs ?? 30_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
        resolvePromise({ code, stdout, stderr })
      },
    )
  })
}

/** openssl, for checking what Gatehouse writes the way relying parties read it. */
export function openssl(args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = execFile('openssl', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
      resolvePromise({ code, stdout, stderr })
    })
    if (input !== undefined) child.stdin?.end(input)
  })
}
