import { spawn } from 'node:child_process'
import { onTestFinished } from 'vitest'
import { GATEHOUSE_BIN } from './run-cli.ts'

/** `gatehouse start` as its own process, on an ephemeral port; stopped with SIGTERM when the test ends. */
export async function startGatehouseProcess(dataDir: string, env: NodeJS.ProcessEnv = {}, args: string[] = []) {
  const child = spawn(
    process.execPath,
    [GATEHOUSE_BIN, 'start', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0', '--log-format', 'json', ...args],
    {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_CLI: process.env.GATEHOUSE_CLI, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  onTestFinished(() => void (child.exitCode === null && child.kill('SIGKILL')))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gatehouse start printed no port:\n${stderr}`)), 30_000)
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      const m = /on 127\.0\.0\.1:(\d+)/.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.once('exit', (code) => reject(new Error(`gatehouse start exited ${code}:\n${stderr}`)))
  })
  return { child, port, exited, logs: () => stdout, stderr: () => stderr }
}
