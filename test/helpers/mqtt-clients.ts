import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { onTestFinished } from 'vitest'
import type { DeviceCredentials } from './broker-pki.ts'
import { packetClient, type PacketClient } from './mqtt-packet-stream.ts'

/**
 * Real MQTT clients against a real broker on 127.0.0.1 (integration tests only): mqtt.js, a raw
 * TLS + mqtt-packet client, and Debian's mosquitto_pub / mosquitto_sub. Everything opened here is
 * closed when the test finishes.
 */

export function mqttOptions(creds: DeviceCredentials, extra: IClientOptions = {}): IClientOptions {
  return {
    ca: creds.ca,
    cert: creds.cert,
    key: creds.key,
    clientId: creds.deviceId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    keepalive: 60,
    rejectUnauthorized: true,
    ...extra,
  }
}

/** Connects and waits for CONNACK 0; the client is ended (forcefully) when the test finishes. */
export async function connectDevice(port: number, creds: DeviceCredentials, extra: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, mqttOptions(creds, extra))
  onTestFinished(() => void client.end(true))
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error(`device ${creds.deviceId} closed before CONNACK`)))
  })
  client.removeAllListeners('error')
  client.on('error', () => {})
  return client
}

export interface AttemptResult {
  /** the CONNACK return code, or null when none arrived */
  connack: number | null
  /** the first error mqtt.js reported (TLS alert, ECONNRESET, "Connection refused: Not authorized" …) */
  error: (Error & { code?: string | number }) | null
}

/**
 * Connects once (no reconnect) and reports what happened: done at CONNACK 0 (then ended) or when the
 * connection closes (a refusal), bounded by `timeoutMs`.
 */
export async function attemptConnect(
  port: number,
  creds: Partial<DeviceCredentials> & Pick<DeviceCredentials, 'ca'>,
  extra: IClientOptions = {},
  timeoutMs = 8000,
): Promise<AttemptResult> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
    ...mqttOptions(creds as DeviceCredentials, extra),
    ...(creds.cert === undefined ? { cert: undefined, key: undefined } : {}),
  })
  onTestFinished(() => void client.end(true))
  const result: AttemptResult = { connack: null, error: null }
  client.on('packetreceive', (p) => {
    if (p.cmd === 'connack')
      result.connack = (p as { returnCode?: number; reasonCode?: number }).returnCode ?? (p as { reasonCode?: number }).reasonCode ?? null
  })
  client.on('error', (err) => void (result.error ??= err))
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    client.once('connect', done)
    client.once('close', done)
  })
  client.end(true)
  return result
}

/** A raw TLS connection speaking mqtt-packet, for what mqtt.js will not send. */
export async function rawTlsClient(
  port: number,
  creds: DeviceCredentials,
  protocolVersion = 4,
): Promise<{ socket: tls.TLSSocket; client: PacketClient }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost' })
  onTestFinished(() => void socket.destroy())
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve())
    socket.once('error', reject)
  })
  return { socket, client: packetClient(socket, protocolVersion) }
}

/** Resolves with the time it took for `client` to emit 'close'. */
export function closedWithin(client: MqttClient): Promise<number> {
  const started = performance.now()
  return new Promise((resolve) => client.once('close', () => resolve(performance.now() - started)))
}

// --- mosquitto clients -------------------------------------------------------------------------

/** Fails (never skips) when Debian's mosquitto-clients are missing: CI installs them. */
export function requireMosquittoClients(): void {
  for (const tool of ['mosquitto_pub', 'mosquitto_sub']) {
    const r = spawnSync(tool, ['--help'], { encoding: 'utf8' })
    if (r.error) {
      throw new Error(`${tool} is not installed: apt-get install mosquitto-clients (the interop tests need it)`)
    }
  }
}

export interface MosquittoFiles {
  cafile: string
  cert: string
  key: string
}

/** Writes a device's PEM files (mode 0600) into a fresh temp dir, removed when the test finishes. */
export function writeDeviceFiles(creds: DeviceCredentials): MosquittoFiles {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mosq-'))
  chmodSync(dir, 0o700)
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name: string, data: string) => {
    const path = join(dir, name)
    writeFileSync(path, data, { mode: 0o600 })
    return path
  }
  return { cafile: write('ca.pem', creds.ca), cert: write('device.pem', creds.cert), key: write('device.key', creds.key) }
}

export interface MosquittoRun {
  child: ChildProcess
  /** resolves when the process exits (bounded by the tool's own -W timeout or the kill at test end) */
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>
}

/** Runs mosquitto_pub / mosquitto_sub against 127.0.0.1:port as the device; killed when the test ends. */
export function runMosquitto(
  tool: 'mosquitto_pub' | 'mosquitto_sub',
  port: number,
  creds: DeviceCredentials,
  args: string[],
): MosquittoRun {
  const files = writeDeviceFiles(creds)
  const child = spawn(
    tool,
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-V',
      'mqttv311',
      '--cafile',
      files.cafile,
      '--cert',
      files.cert,
      '--key',
      files.key,
      '-i',
      creds.deviceId,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('error', (err) => resolve({ code: -1, stdout, stderr: stderr + String(err) }))
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
  return { child, exited }
}

/** A device's credentials from the bundle folder `device create` writes: <out>/<id>/{cert,key,ca}.pem. */
export function readBundleCredentials(out: string, id: string): DeviceCredentials {
  const dir = join(out, id)
  return {
    deviceId: id,
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    serial: '',
  }
}
