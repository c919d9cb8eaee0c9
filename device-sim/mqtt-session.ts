import { isIP } from 'node:net'
import type tls from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { SimAnswerInvalid, SimAnswerTimeout, SimBrokerUrlInvalid, SimConnectFailed, SimSubscribeRefused } from './errors.ts'
import { secureContextOf, type DeviceBundle } from './fleet.ts'

/** Where the broker is: from `mqtts://HOST:PORT` (port 8883 when left out). */
export interface BrokerAddress {
  host: string
  port: number
  /** the TLS server name to verify (the URL's host), unless it is an IP address (its IP SAN is checked) */
  servername?: string
  url: string
}

export function parseBrokerUrl(url: string): BrokerAddress {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new SimBrokerUrlInvalid(url)
  }
  if (parsed.protocol !== 'mqtts:' || !parsed.hostname || parsed.pathname.replace(/\/$/, '') !== '' || parsed.username)
    throw new SimBrokerUrlInvalid(url)
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = parsed.port ? Number(parsed.port) : 8883
  return { host, port, url: `mqtts://${parsed.host || host}`, ...(isIP(host) === 0 && { servername: host }) }
}

export interface SessionOptions {
  clientId: string
  /** default true */
  clean?: boolean
  /** CONNECT -> CONNACK bound, default 10000 ms */
  connectTimeoutMs?: number
  keepaliveSeconds?: number
}

/**
 * One mqtt.js client over mutual TLS with the device's own key, certificate and CA chain, MQTT 3.1.1,
 * no automatic reconnect (the caller decides), verifying the broker's certificate. Not yet connected:
 * listen for 'connect' / 'close' / 'error'.
 */
export function openClient(bundle: DeviceBundle, broker: BrokerAddress, options: SessionOptions): MqttClient {
  const mqttOptions: IClientOptions & { secureContext: tls.SecureContext } = {
    protocol: 'mqtts',
    host: broker.host,
    port: broker.port,
    ...(broker.servername !== undefined && { servername: broker.servername }),
    secureContext: secureContextOf(bundle),
    rejectUnauthorized: true,
    clientId: options.clientId,
    protocolVersion: 4,
    clean: options.clean ?? true,
    keepalive: options.keepaliveSeconds ?? 30,
    reconnectPeriod: 0,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
  }
  const client = mqtt.connect(mqttOptions)
  client.on('error', () => {}) // surfaced through 'close' and the connect result; never an unhandled 'error'
  return client
}

/** Opens a client and resolves once CONNACK 0 arrives; rejects (ending the client) otherwise, bounded. */
export function connectClient(bundle: DeviceBundle, broker: BrokerAddress, options: SessionOptions): Promise<MqttClient> {
  const client = openClient(bundle, broker, options)
  const timeoutMs = (options.connectTimeoutMs ?? 10_000) + 1000
  return new Promise((resolve, reject) => {
    let lastError = 'closed before CONNACK'
    const timer = setTimeout(() => fail(`no CONNACK within ${timeoutMs} ms`), timeoutMs)
    const onError = (err: Error & { code?: string | number }) => (lastError = describeError(err))
    const fail = (why: string) => {
      cleanup()
      client.end(true)
      reject(new SimConnectFailed(broker.url, options.clientId, why))
    }
    const onClose = () => fail(lastError)
    const onConnect = () => {
      cleanup()
      resolve(client)
    }
    const cleanup = () => {
      clearTimeout(timer)
      client.removeListener('connect', onConnect)
      client.removeListener('close', onClose)
      client.removeListener('error', onError)
    }
    client.on('error', onError)
    client.once('connect', onConnect)
    client.once('close', onClose)
  })
}

export function describeError(err: Error & { code?: string | number }): string {
  if (typeof err.code === 'number') return `CONNACK ${err.code} (${err.message})`
  return err.code ? `${err.code}: ${err.message}` : err.message
}

/** Subscribes (QoS 1) and rejects with GH_SIM_SUBSCRIBE_REFUSED when the broker answers SUBACK 0x80. */
export async function subscribeOrThrow(client: MqttClient, topics: string[]): Promise<void> {
  const granted = await client.subscribeAsync(topics, { qos: 1 })
  const refused = granted.find((g) => g.qos === 128)
  if (refused) throw new SimSubscribeRefused(refused.topic)
}

/**
 * Waits for the first JSON object on `topic` that `accept` takes (e.g. the matching requestId), for at
 * most timeoutMs; `abort` ends the wait early (e.g. the connection closed). Subscribe first.
 */
export function awaitAnswer(
  client: MqttClient,
  topic: string,
  timeoutMs: number,
  accept: (answer: Record<string, unknown>) => boolean = () => true,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new SimAnswerTimeout(topic, timeoutMs)), timeoutMs)
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return
      let answer: unknown
      try {
        answer = JSON.parse(payload.toString('utf8'))
      } catch {
        return finish(new SimAnswerInvalid(topic, 'not JSON'))
      }
      if (typeof answer !== 'object' || answer === null || typeof (answer as { ok?: unknown }).ok !== 'boolean')
        return finish(new SimAnswerInvalid(topic, 'no boolean "ok"'))
      if (accept(answer as Record<string, unknown>)) finish(null, answer as Record<string, unknown>)
    }
    const onClose = () => finish(new SimConnectFailed(topic, 'the session', 'the connection closed before the answer'))
    function finish(err: Error | null, answer?: Record<string, unknown>) {
      clearTimeout(timer)
      client.removeListener('message', onMessage)
      client.removeListener('close', onClose)
      if (err) reject(err)
      else resolve(answer as Record<string, unknown>)
    }
    client.on('message', onMessage)
    client.once('close', onClose)
  })
}

/** Ends a client cleanly (DISCONNECT after pending writes), bounded; forcefully after timeoutMs. */
export function endClient(client: MqttClient, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.stream?.destroy()
      resolve()
    }, timeoutMs)
    client.end(false, {}, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}
