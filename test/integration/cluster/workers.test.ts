import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openControlPlane, type ControlPlane } from '../../../provisioning/index.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { GATEHOUSE_BIN, runCli } from '../../helpers/run-cli.ts'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { redisAvailable, startRedis, type RedisServer } from '../../helpers/redis-server.ts'
import { waitFor } from '../../helpers/wait.ts'

/**
 * `gatehouse start --cluster … --workers 2` as its own process for the whole file (test/helpers'
 * startGatehouseProcess stops its process when a test ends); JSON log on stdout, the port from stderr.
 */
async function startWorkers(dataDir: string, redisUrl: string) {
  const child = spawn(
    process.execPath,
    [
      GATEHOUSE_BIN,
      'start',
      '--data-dir',
      dataDir,
      '--mqtt-port',
      '0',
      '--http-port',
      '0',
      '--log-format',
      'json',
      '--log-level',
      'info',
    ].concat(['--cluster', redisUrl, '--workers', '2']),
    // the API over HTTPS on loopback too (httpTls), for its session resumption across workers
    { env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_HTTP_TLS: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = Number(
    await waitFor(
      () => /on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1] ?? (child.exitCode !== null ? 'exited' : undefined),
      60_000,
      () => `the port:\n${stderr}`,
    ),
  )
  if (Number.isNaN(port)) throw new Error(`gatehouse start exited:\n${stderr}`)
  return { child, port, exited, logs: () => stdout, stderr: () => stderr }
}

type Started = Awaited<ReturnType<typeof startWorkers>>

/** The JSON log lines of the process (stdout), parsed. */
function logLines(gh: Started): Record<string, unknown>[] {
  return gh
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** The workers that logged 'device connected' for this device, in order. */
function servedBy(gh: Started, deviceId: string): number[] {
  return logLines(gh)
    .filter((l) => l.msg === 'device connected' && l.deviceId === deviceId)
    .map((l) => l.worker as number)
}

describe.skipIf(!redisAvailable())('gatehouse start --cluster … --workers 2: one process, two workers on one port', () => {
  let redis: RedisServer
  let gh: Started
  let operator: ControlPlane
  let dir: string

  beforeAll(async () => {
    redis = await startRedis()
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-workers-'))
    const dataDir = join(dir, 'data')
    gh = await startWorkers(dataDir, redis.url)
    operator = await openControlPlane(dataDir, {}, { log: pino({ level: 'silent' }) })
  }, 60_000)

  afterAll(async () => {
    await operator?.close()
    if (gh?.child.exitCode === null) gh.child.kill('SIGKILL')
    await redis?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  }, 30_000)

  async function provision(id: string): Promise<DeviceCredentials> {
    const issued = await operator.authority.createDevice({ id }, 'operator:test')
    return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
  }

  /** Connects devices until each worker serves at least one; returns them with their worker. */
  async function oneOnEachWorker(prefix: string): Promise<{ client: MqttClient; creds: DeviceCredentials; worker: number }[]> {
    const byWorker = new Map<number, { client: MqttClient; creds: DeviceCredentials; worker: number }>()
    for (let i = 0; i < 8 && byWorker.size < 2; i++) {
      const creds = await provision(`${prefix}-${i}`)
      const client = await connectDevice(gh.port, creds)
      const worker = await waitFor(() => servedBy(gh, creds.deviceId)[0], 5000, `the worker that serves ${creds.deviceId}`)
      if (!byWorker.has(worker)) byWorker.set(worker, { client, creds, worker })
    }
    expect(byWorker.size).toBe(2)
    return [...byWorker.values()]
  }

  it('starts two workers on one MQTT port, both serving devices over mutual TLS, with the primary saying so', async () => {
    expect(gh.stderr()).toContain('2 workers')
    // the primary says so on stderr once both listen; its log lines come on stdout, another pipe, maybe later
    const listening = () =>
      new Set(
        logLines(gh)
          .filter((l) => l.msg === 'worker listening')
          .map((l) => l.worker),
      )
    await waitFor(
      () => listening().size === 2,
      10_000,
      () => `both 'worker listening' lines:\n${gh.logs()}`,
    )
    const devices = await oneOnEachWorker('spread')
    expect(devices.map((d) => d.worker).sort()).toEqual([1, 2])
    // a SUBSCRIBE looks up retained messages in Redis; the second SUBACK shows the worker lived through the first
    for (const d of devices) {
      await d.client.subscribeAsync(`devices/${d.creds.deviceId}/insights`, { qos: 1 })
      await d.client.subscribeAsync(`devices/${d.creds.deviceId}/settings`, { qos: 1 })
      expect(d.client.connected).toBe(true)
    }
    expect(logLines(gh).filter((l) => l.msg === 'worker died: restarting')).toEqual([])
  }, 30_000)

  it('a second connection of a device on the other worker takes the session over', async () => {
    const creds = await provision('takeover-1')
    const first = await connectDevice(gh.port, creds)
    const firstWorker = await waitFor(() => servedBy(gh, 'takeover-1')[0], 5000, 'the first session')
    const closed = closedWithin(first)
    // the primary hands connections out in turn: the next one or the one after lands on the other worker
    let second: MqttClient | undefined
    for (let i = 0; i < 4; i++) {
      second = await connectDevice(gh.port, creds)
      const workers = await waitFor(
        () => (servedBy(gh, 'takeover-1').length > i + 1 ? servedBy(gh, 'takeover-1') : undefined),
        5000,
        'a later session',
      )
      if (workers.at(-1) !== firstWorker) break
      second.end(true)
    }
    expect(servedBy(gh, 'takeover-1').at(-1)).not.toBe(firstWorker)
    expect(await closed).toBeLessThan(1000)
    expect(second?.connected).toBe(true)
  }, 30_000)

  it('a revocation closes the device on either worker, and both refuse it', async () => {
    const devices = await oneOnEachWorker('revoke')
    const closed = devices.map((d) => closedWithin(d.client))
    for (const d of devices) await operator.authority.revokeDevice(d.creds.deviceId, 'keyCompromise', 'operator:test')
    for (const ms of await Promise.all(closed)) expect(ms).toBeLessThan(2000)
    for (const d of devices) for (let i = 0; i < 2; i++) expect((await attemptConnect(gh.port, d.creds)).connack).toBe(5)
  }, 30_000)

  it('a killed worker is restarted, and its devices reconnect', async () => {
    const devices = await oneOnEachWorker('killed')
    const victim = devices[0]!
    const pid = logLines(gh)
      .filter((l) => l.msg === 'worker listening' && l.worker === victim.worker)
      .at(-1)?.workerPid as number
    const reconnected = new Promise<void>((resolve) => victim.client.once('connect', () => resolve()))
    victim.client.options.reconnectPeriod = 100
    const listeningBefore = logLines(gh).filter((l) => l.msg === 'worker listening').length
    process.kill(pid, 'SIGKILL')
    await waitFor(() => logLines(gh).some((l) => l.msg === 'worker died: restarting' && l.worker === victim.worker), 5000, 'the restart')
    await waitFor(
      () => logLines(gh).filter((l) => l.msg === 'worker listening').length > listeningBefore,
      30_000,
      'the new worker listening',
    )
    await reconnected
    await waitFor(() => servedBy(gh, victim.creds.deviceId).length >= 2, 5000, 'the device served again')
    expect(devices[1]!.client.connected).toBe(true)
  }, 60_000)

  it('the workers share the TLS session ticket keys: a session resumes whichever worker takes the connection', async () => {
    const creds = await provision('resume-1')
    const open = (session?: Buffer) =>
      new Promise<{ socket: TLSSocket; ticket: Promise<Buffer> }>((resolve, reject) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port: gh.port,
          ca: creds.ca,
          cert: creds.cert,
          key: creds.key,
          servername: 'localhost',
          checkServerIdentity: () => undefined,
          ...(session && { session }),
        })
        const ticket = new Promise<Buffer>((r) => socket.once('session', r))
        socket.once('secureConnect', () => resolve({ socket, ticket }))
        socket.once('error', reject)
      })
    const first = await open()
    const ticket = await first.ticket
    first.socket.destroy()
    // the primary deals connections out in turn: of four, two land on the other worker
    const reused: boolean[] = []
    for (let i = 0; i < 4; i++) {
      const next = await open(ticket)
      reused.push(next.socket.isSessionReused())
      next.socket.destroy()
    }
    expect(reused).toEqual([true, true, true, true])
  }, 30_000)

  it('the HTTPS API (httpTls on loopback) keeps the shared ticket keys through a CA rotation: a client resumes its first session on both workers', async () => {
    const apiPort = Number(/HTTP API on https:\/\/127\.0\.0\.1:(\d+)/.exec(gh.stderr())?.[1])
    expect(apiPort).toBeGreaterThan(0)
    const { ca } = await provision('resume-api') // the root in it still verifies the server certificate after the rotation
    // node:cluster gives the workers' listening HTTPS servers one worker's random ticket keys at listen; a CA
    // rotation's new secure context would make new ones per worker, unless the server was given its keys
    const reloadsBefore = logLines(gh).filter((l) => l.msg === 'issuing CA reloaded').length
    const rotate = await runCli(['ca', 'rotate', '--data-dir', join(dir, 'data')])
    expect(rotate.code, rotate.stderr).toBe(0)
    await waitFor(
      () => logLines(gh).filter((l) => l.msg === 'issuing CA reloaded').length >= reloadsBefore + 2,
      10_000,
      'both workers reloading the CA',
    )
    /** one HTTP/1.1 request on its own TLS connection: whether the session was resumed, and the answer's status line */
    const get = (path: string, session?: Buffer) =>
      new Promise<{ reused: boolean; status: string; ticket: Promise<Buffer> }>((resolve, reject) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port: apiPort,
          ca,
          checkServerIdentity: () => undefined,
          ...(session && { session }),
        })
        const ticket = new Promise<Buffer>((r) => socket.once('session', r))
        let answer = ''
        socket.once('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`))
        socket.on('data', (d: Buffer) => (answer += d.toString()))
        socket.once('end', () => resolve({ reused: socket.isSessionReused(), status: answer.split('\r\n')[0] ?? '', ticket }))
        socket.once('error', reject)
      })
    const answeredBy = (path: string) =>
      waitFor(
        () => logLines(gh).find((l) => l.msg === 'request' && l.path === path)?.worker as number | undefined,
        5000,
        `the log of ${path}`,
      )
    const first = await get('/healthz')
    expect(first.status).toBe('HTTP/1.1 200 OK')
    const ticket = await first.ticket
    // the primary deals connections out in turn: within a few, both workers answer
    const later: { reused: boolean; worker: number }[] = []
    for (let i = 0; i < 8 && (later.length < 4 || new Set(later.map((l) => l.worker)).size < 2); i++) {
      const path = `/resume-probe-${i}` // a 404 of its own, logged with the worker that answered it
      const r = await get(path, ticket)
      expect(r.status).toBe('HTTP/1.1 404 Not Found')
      later.push({ reused: r.reused, worker: await answeredBy(path) })
    }
    expect(new Set(later.map((l) => l.worker)).size).toBe(2) // both live workers (ids grow as workers are restarted)
    expect(later.filter((l) => !l.reused)).toEqual([])
  }, 30_000)

  it('SIGTERM to the primary stops every worker and the primary exits 0', async () => {
    gh.child.kill('SIGTERM')
    await waitFor(
      () => gh.child.exitCode !== null,
      20_000,
      () => `the primary's exit:\n${gh.logs().split('\n').slice(-15).join('\n')}`,
    )
    expect(gh.child.exitCode).toBe(0)
    const stopped = logLines(gh).filter((l) => l.msg === 'stopped')
    // each live worker and the primary
    expect(stopped.filter((l) => l.worker !== undefined).length).toBe(2)
    expect(stopped.some((l) => l.worker === undefined)).toBe(true)
  }, 30_000)
})
