import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Debian's redis-server (installed by .ci/run); the cluster tests start their own on a loopback port. */
const REDIS_SERVER = '/usr/bin/redis-server'

/**
 * Whether the cluster tests can run: true when redis-server is installed. Without it they are skipped
 * with a message on a developer's machine, and fail in CI (process.env.CI set), where it must be.
 */
export function redisAvailable(): boolean {
  if (existsSync(REDIS_SERVER)) return true
  if (process.env.CI) throw new Error(`${REDIS_SERVER} is missing: .ci/run installs redis-server, and CI must run the cluster tests`)
  console.warn(`cluster tests skipped: ${REDIS_SERVER} is not installed (apt-get install redis-server)`)
  return false
}

export interface RedisServer {
  url: string
  port: number
  /** SIGKILL, then a new redis-server on the same port and directory (its AOF): the nodes must reconnect */
  restart(): Promise<void>
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function spawnRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir, '--protected-mode', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve(child)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited ${code}:\n${out}`))
    })
  })
}

const stopped = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })

/** redis-server as the test's own process: a free loopback port, AOF on, in a temp directory removed by stop(). */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'))
  const port = await freePort()
  let child = await spawnRedis(port, dir)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart() {
      await stopped(child)
      child = await spawnRedis(port, dir)
    },
    async stop() {
      await stopped(child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
