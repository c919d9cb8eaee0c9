import { fork, type ChildProcess } from 'node:child_process'
import tls from 'node:tls'
import mqtt, { type MqttClient } from 'mqtt'
import type { DeviceCredentials } from '../helpers/broker-pki.ts'
import { waitFor } from '../helpers/wait.ts'
import type { FuzzBrokerRequest, FuzzBrokerState } from './fuzz-broker.ts'
import { goodConnect, PINGREQ, type FuzzCase } from './mqtt-cases.ts'

/**
 * Drives the broker of fuzz-broker.ts (a child process): sends each case on its own authenticated TLS
 * connection, and after each batch checks that the broker lives, a fresh device connects and gets its
 * PUBACK, the watching device got the batch's marker, and no connection of the batch is left behind.
 */

/** Cases run this many at a time, each lane as its own device (fuzz-0 …), so a case never meets another's session. */
export const FUZZ_LANES = 4

/** The device case `index` connects as (and names in its topics and CONNECTs). */
export const fuzzDevice = (index: number) => `fuzz-${index % FUZZ_LANES}`

export interface FuzzBroker {
  port: number
  request<T>(m: FuzzBrokerRequest): Promise<T>
  /** resolves with the exit code once the child exits */
  exited: Promise<number | null>
  isAlive(): boolean
  stop(): Promise<void>
}

export async function startFuzzBroker(): Promise<FuzzBroker> {
  const child: ChildProcess = fork(new URL('./fuzz-broker.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let alive = true
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      alive = false
      resolve(code)
    }),
  )
  const pending = new Map<number, (value: unknown) => void>()
  let seq = 0
  const ready = new Promise<number>((resolve, reject) => {
    child.on('message', (m: { reply?: string; port?: number; seq?: number; value?: unknown }) => {
      if (m.reply === 'ready') resolve(m.port as number)
      if (m.seq !== undefined) pending.get(m.seq)?.(m.value)
    })
    void exited.then((code) => reject(new Error(`fuzz broker exited (${code}) before it listened`)))
  })
  const port = await ready
  return {
    port,
    request<T>(m: FuzzBrokerRequest) {
      const n = ++seq
      return new Promise<T>((resolve, reject) => {
        if (!alive) return reject(new Error('fuzz broker exited'))
        pending.set(n, (v) => resolve(v as T))
        void exited.then(() => reject(new Error('fuzz broker exited')))
        child.send({ ...m, seq: n }, (err) => err && reject(err))
      })
    },
    exited,
    isAlive: () => alive,
    async stop() {
      if (alive) child.kill('SIGTERM')
      await exited
    },
  }
}

export type CaseOutcome = 'closed' | 'hang' | 'connect-refused'

/**
 * One case on a fresh TLS connection: (for 'post', a good CONNECT and its CONNACK 0 first), the bytes, a
 * PINGREQ, then our FIN; done when the broker has closed the connection, a hang after `timeoutMs`.
 */
export function runCase(port: number, creds: DeviceCredentials, c: FuzzCase, timeoutMs = 10_000): Promise<CaseOutcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost' })
    let outcome: CaseOutcome = 'closed'
    const timer = setTimeout(() => {
      outcome = 'hang'
      socket.destroy()
    }, timeoutMs)
    socket.on('error', () => {})
    // read everything the broker sends: an unread socket never sees the broker's close
    socket.resume()
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(outcome)
    })
    const send = () => {
      socket.write(c.bytes)
      socket.write(PINGREQ)
      socket.end()
    }
    socket.once('secureConnect', () => {
      if (c.phase === 'pre') return send()
      socket.write(goodConnect(creds.deviceId))
      let seen = Buffer.alloc(0)
      const onData = (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk])
        if (seen.length < 4) return
        socket.off('data', onData)
        if (seen[0] === 0x20 && seen[3] === 0) return send()
        outcome = 'connect-refused'
        socket.destroy()
      }
      socket.on('data', onData)
    })
  })
}

/** The long-lived device that must keep receiving its messages through every batch. */
export interface Watcher {
  client: MqttClient
  received: string[]
  /** times its connection closed (must stay 0) */
  closes: number
}

export async function connectDevice(port: number, creds: DeviceCredentials): Promise<MqttClient> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
    ca: creds.ca,
    cert: creds.cert,
    key: creds.key,
    clientId: creds.deviceId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    keepalive: 60,
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error(`${creds.deviceId} closed before CONNACK`)))
  })
  client.removeAllListeners('error')
  client.on('error', () => {})
  return client
}

export async function startWatcher(broker: FuzzBroker): Promise<Watcher> {
  const creds = await broker.request<DeviceCredentials>({ op: 'device', deviceId: 'watcher' })
  const client = await connectDevice(broker.port, creds)
  const watcher: Watcher = { client, received: [], closes: 0 }
  client.on('message', (_topic, payload) => watcher.received.push(payload.toString()))
  client.on('close', () => watcher.closes++)
  await client.subscribeAsync('devices/watcher/insights', { qos: 1 })
  return watcher
}

export interface BatchCheck {
  ok: boolean
  problem?: string
  state?: FuzzBrokerState
}

/**
 * After a batch: the broker answers, only the watcher is connected, a fresh device connects and its QoS 1
 * publish is acknowledged, and the watcher receives this batch's marker.
 */
export async function checkBroker(broker: FuzzBroker, watcher: Watcher, batch: number, timeoutMs = 10_000): Promise<BatchCheck> {
  try {
    let state = await broker.request<FuzzBrokerState>({ op: 'state' })
    state = await waitFor(
      async () => {
        const s = await broker.request<FuzzBrokerState>({ op: 'state' })
        return s.connectedClients === 1 ? s : null
      },
      timeoutMs,
      () => `only the watcher connected (${state.connectedClients} clients)`,
      50,
    )
    const probe = await broker.request<DeviceCredentials>({ op: 'device', deviceId: `probe-${batch}` })
    const client = await connectDevice(broker.port, probe)
    await client.publishAsync(`devices/probe-${batch}/telemetry`, '{"ok":true}', { qos: 1 })
    await client.endAsync()
    const marker = `batch-${batch}`
    await broker.request({ op: 'publish', topic: 'devices/watcher/insights', payload: marker })
    await waitFor(() => watcher.received.includes(marker), timeoutMs, `the watcher to receive ${marker}`)
    if (watcher.closes > 0) return { ok: false, problem: 'the watching device was disconnected', state }
    if (state.errors.length > 0) return { ok: false, problem: `the broker logged errors: ${state.errors.join(' | ')}`, state }
    return { ok: true, state }
  } catch (err) {
    return { ok: false, problem: broker.isAlive() ? String((err as Error).message) : 'the broker process exited' }
  }
}
