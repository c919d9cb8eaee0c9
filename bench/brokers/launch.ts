import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DeviceBundle } from '../../device-sim/index.ts'
import type { ChildMessage, ConsumerReport, ParentMessage } from './ipc.ts'

/**
 * Starts each broker in its own process (so /proc/PID/stat and RSS are the broker's alone) and stops
 * it again. Only processes started here are ever signalled, by their own handle.
 */

/** 'gatehouse-ai-off': Gatehouse with `aiEnabled: false`, to tell the broker's cost from the AI bridge's */
export type BrokerKind = 'gatehouse' | 'gatehouse-ai-off' | 'aedes' | 'mosquitto'

export const BROKER_LABELS: Record<BrokerKind, string> = {
  gatehouse: 'Gatehouse',
  'gatehouse-ai-off': 'Gatehouse, AI bridge off',
  aedes: 'plain aedes',
  mosquitto: 'Mosquitto',
}

/** The TLS material every broker serves with: Gatehouse's own data dir files. */
export interface BrokerTlsFiles {
  dataDir: string
  caFile: string
  certFile: string
  keyFile: string
}

/** Counts telemetry arrivals somewhere (in the broker process, or a subscriber process). */
export interface Consumer {
  /** resets and waits until the consumer is armed for `count` messages */
  expect(count: number): Promise<void>
  /** fewer than expected were sent: `reached` fires at `count` */
  lower(count: number): void
  /** resolves with the last arrival when `count` arrived, or null after timeoutMs */
  reached(timeoutMs: number): Promise<bigint | null>
  report(): Promise<ConsumerReport>
}

export interface RunningBroker {
  kind: BrokerKind
  pid: number
  port: number
  /** present when started with a consumer */
  consumer: Consumer | null
  /** 'in-broker' (aedes subscription inside the broker process) or 'subscriber' (a TLS client process) */
  consumerKind: 'in-broker' | 'subscriber' | null
  stop(): Promise<void>
}

export interface StartOptions {
  /** start a consumer of devices/+/telemetry/# */
  consume?: { subscriberDevice: DeviceBundle; gatehouseMode?: 'subscribe' | 'listener' }
}

const here = import.meta.dirname
const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/** Path of Debian's mosquitto broker, or null (BENCH_MOSQUITTO=off skips it; =PATH picks another). */
export function mosquittoPath(): string | null {
  const wanted = process.env.BENCH_MOSQUITTO
  if (wanted === 'off') return null
  if (wanted) return wanted
  for (const p of ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto']) if (existsSync(p)) return p
  const which = spawnSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' })
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null
}

export function mosquittoVersion(path: string): string {
  const out = spawnSync(path, ['-h'], { encoding: 'utf8' })
  return /mosquitto version (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown'
}

export async function startBroker(kind: BrokerKind, files: BrokerTlsFiles, options: StartOptions = {}): Promise<RunningBroker> {
  if (kind === 'mosquitto') return startMosquitto(files, options)
  const gatehouse = kind === 'gatehouse' || kind === 'gatehouse-ai-off'
  const caseDir = gatehouse ? copyDataDir(files.dataDir) : null
  const script = gatehouse ? join(here, 'gatehouse-broker.ts') : join(here, 'plain-aedes-broker.ts')
  const args = gatehouse
    ? [
        (caseDir as { path: string }).path,
        ...(options.consume ? [`--consume=${options.consume.gatehouseMode ?? 'subscribe'}`] : []),
        ...(kind === 'gatehouse-ai-off' ? ['--ai-off'] : []),
      ]
    : [files.caFile, files.certFile, files.keyFile, ...(options.consume ? ['--consume'] : [])]
  const child = spawnNode(script, args)
  const ipc = ipcOf(child)
  const listening = await ipc.next('listening', 60_000).catch(async (err: unknown) => {
    await stopNode(child)
    caseDir?.remove()
    throw err
  })
  return {
    kind,
    pid: child.pid as number,
    port: listening.port,
    consumer: options.consume ? consumerOver(ipc) : null,
    consumerKind: options.consume ? 'in-broker' : null,
    async stop() {
      await stopNode(child)
      caseDir?.remove()
    },
  }
}

/**
 * A fresh broker per case means fresh state too: each Gatehouse case runs on its own copy of the
 * provisioned data dir, so what one case writes (audit records, AI usage and budgets, insights) never
 * slows or throttles the next.
 */
function copyDataDir(dataDir: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-case-'))
  const path = join(dir, 'data')
  tempDirs.add(dir)
  cpSync(dataDir, path, { recursive: true })
  return {
    path,
    remove() {
      rmSync(dir, { recursive: true, force: true })
      tempDirs.delete(dir)
    },
  }
}

function spawnNode(script: string, args: string[]): ChildProcess {
  // BENCH_NODE_ARGS: extra node flags for the Node children, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
    cwd: join(here, '..', '..'),
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    serialization: 'advanced',
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
    process.stderr.write(d)
  })
  Object.defineProperty(child, 'stderrTail', { get: () => stderr })
  return child
}

async function stopNode(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.send({ type: 'close' } satisfies ParentMessage)
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
  await exited
  clearTimeout(timer)
}

export type Ipc = {
  next<T extends ChildMessage['type']>(type: T, timeoutMs: number): Promise<Extract<ChildMessage, { type: T }>>
  nextOrNull<T extends ChildMessage['type']>(type: T, timeoutMs: number): Promise<Extract<ChildMessage, { type: T }> | null>
  send(m: ParentMessage): void
}

export function ipcOf(child: ChildProcess): Ipc {
  const waiting = new Map<string, (m: ChildMessage) => void>()
  const early = new Map<string, ChildMessage>()
  let exitError: Error | null = null
  child.on('message', (m: ChildMessage) => {
    if (m.type === 'failed') exitError = new Error(`child failed: ${m.error}`)
    const w = waiting.get(m.type)
    if (w) {
      waiting.delete(m.type)
      w(m)
    } else early.set(m.type, m)
  })
  const rejecters = new Set<(e: Error) => void>()
  child.once('exit', (code, signal) => {
    exitError ??= new Error(`child exited (${code ?? signal}): ${(child as unknown as { stderrTail?: string }).stderrTail ?? ''}`)
    for (const r of rejecters) r(exitError)
  })
  function wait<T extends ChildMessage['type']>(
    type: T,
    timeoutMs: number,
    orNull: boolean,
  ): Promise<Extract<ChildMessage, { type: T }> | null> {
    const got = early.get(type)
    if (got) {
      early.delete(type)
      return Promise.resolve(got as Extract<ChildMessage, { type: T }>)
    }
    return new Promise((resolve, reject) => {
      if (exitError) return reject(exitError)
      const timer = setTimeout(() => {
        waiting.delete(type)
        rejecters.delete(reject)
        orNull ? resolve(null) : reject(new Error(`no '${type}' from child within ${timeoutMs} ms`))
      }, timeoutMs)
      rejecters.add(reject)
      waiting.set(type, (m) => {
        clearTimeout(timer)
        rejecters.delete(reject)
        resolve(m as Extract<ChildMessage, { type: T }>)
      })
    })
  }
  return {
    next: (type, timeoutMs) => wait(type, timeoutMs, false) as never,
    nextOrNull: (type, timeoutMs) => wait(type, timeoutMs, true),
    send: (m) => void child.send(m),
  }
}

export function consumerOver(ipc: Ipc): Consumer {
  return {
    async expect(count) {
      ipc.send({ type: 'expect', count })
      await ipc.next('armed', 10_000)
    },
    lower(count) {
      ipc.send({ type: 'lower', count })
    },
    async reached(timeoutMs) {
      return (await ipc.nextOrNull('reached', timeoutMs))?.lastArrivalNs ?? null
    },
    async report() {
      ipc.send({ type: 'report' })
      return (await ipc.next('report', 10_000)).report
    },
  }
}

/**
 * Sequential connects of `devices` (each closed before the next) from a fresh process; resolves with
 * the latencies of the `count` connects after `warmup` unmeasured ones.
 */
export async function probeConnects(port: number, devices: DeviceBundle[], warmup: number, count: number): Promise<number[]> {
  const child = spawnNode(join(here, 'probe-client.ts'), [])
  const done = new Promise<{ latencies?: number[]; error?: string }>((resolve) => {
    child.once('message', (m: { latencies?: number[]; error?: string }) => resolve(m))
    child.once('exit', (code) => resolve({ error: `probe client exited ${code}` }))
  })
  child.send({ port, devices, warmup, count })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const result = await done
  clearTimeout(timer)
  if (!result.latencies) throw new Error(`unloaded connects failed: ${result.error}`)
  return result.latencies
}

// --- Mosquitto ----------------------------------------------------------------------------------

/** A free loopback port: bind port 0, read it, release it (Mosquitto needs a fixed port). */
async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited ${child.exitCode}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`)
}

async function startMosquitto(files: BrokerTlsFiles, options: StartOptions): Promise<RunningBroker> {
  const bin = mosquittoPath()
  if (!bin) throw new Error('mosquitto is not installed')
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-mosquitto-'))
  tempDirs.add(dir)
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      // run as root (as in a container), mosquitto would switch to user 'mosquitto', who cannot read the
      // 0700 data dir; no effect when not started as root
      'user root',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'allow_anonymous true',
      'max_connections -1',
      'set_tcp_nodelay true',
      // QoS 0 for the subscriber; no queue limits that would drop what a slow subscriber has not read yet
      'max_queued_messages 0',
      `listener ${port} 127.0.0.1`,
      `cafile ${files.caFile}`,
      `certfile ${files.certFile}`,
      `keyfile ${files.keyFile}`,
      'require_certificate true',
      'use_identity_as_username true',
      '',
    ].join('\n'),
  )
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  // not worth a line each: a client closed without TLS close_notify, and mosquitto's root warning
  const noise = /unexpected eof while reading|should not be run as root|^\s*$/
  child.stderr?.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (!noise.test(line)) process.stderr.write(`[mosquitto] ${line}\n`)
  })
  const stopBroker = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
  try {
    await waitForPort(port, child, 10_000)
  } catch (err) {
    await stopBroker()
    throw err
  }
  if (!options.consume) {
    return { kind: 'mosquitto', pid: child.pid as number, port, consumer: null, consumerKind: null, stop: stopBroker }
  }
  const sub = spawnNode(join(here, 'mqtt-consumer.ts'), [])
  const ipc = ipcOf(sub)
  try {
    ipc.send({ type: 'init', port, device: options.consume.subscriberDevice })
    await ipc.next('ready', 30_000)
  } catch (err) {
    await stopNode(sub)
    await stopBroker()
    throw err
  }
  return {
    kind: 'mosquitto',
    pid: child.pid as number,
    port,
    consumer: consumerOver(ipc),
    consumerKind: 'subscriber',
    async stop() {
      await stopNode(sub)
      await stopBroker()
    },
  }
}
