import { type ChildProcess, spawn } from 'node:child_process'
import { GATEHOUSE_BIN } from '../helpers/run-cli.ts'

export interface GatehouseProcess {
  child: ChildProcess
  mqttPort: number
  httpUrl: string
  exited: Promise<number | null>
  stderr(): string
}

/** `gatehouse start` as its own process on ephemeral loopback ports; resolves once it says where it listens. */
export async function startGatehouseProcess(dataDir: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<GatehouseProcess> {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, 'start', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ports = await new Promise<{ mqttPort: number; httpUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gatehouse start printed no ports:\n${stderr}`)), timeoutMs)
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
      const m = /MQTT over mutual TLS on 127\.0\.0\.1:(\d+); HTTP API on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve({ mqttPort: Number(m[1]), httpUrl: m[2]! })
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`gatehouse start exited ${code}:\n${stderr}`))
    })
  })
  return { child, ...ports, exited, stderr: () => stderr }
}

/** SIGKILL, and wait until the process is gone (its locks released). */
export async function killHard(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await exited
}
