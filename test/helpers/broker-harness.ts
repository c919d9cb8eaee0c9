import type { Packet } from 'mqtt-packet'
import pino, { type Logger } from 'pino'
import { onTestFinished } from 'vitest'
import { createBroker, type Broker } from '../../broker/index.ts'
import { resolveLimits } from '../../broker/options.ts'
import type { BrokerLimitsInput } from '../../broker/limits.ts'
import { createMqttCore, type MqttCore } from '../../broker/create-mqtt-core.ts'
import type { DeviceLimitsSource } from '../../broker/device-limits.ts'
import type { ProxyProtocolInput } from '../../broker/proxy-protocol.ts'
import { systemClock, type Timers } from '../../certs/index.ts'
import { fixedClock, type FixedClock } from './clock.ts'
import { createFakeDirectory, type FakeDirectory } from './fake-directory.ts'
import {
  asTlsPeer,
  duplexPair,
  fakePeerCertificate,
  packetClient,
  type FakePeerCertificateOptions,
  type PacketClient,
} from './mqtt-packet-stream.ts'

/** A pino logger that keeps its records (parsed) in memory. */
export function createRecordingLogger(level: pino.Level = 'debug'): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = []
  const log = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) })
  return { log, records }
}

export interface CoreHarness {
  core: MqttCore
  directory: FakeDirectory
  clock: FixedClock
  logs: Record<string, unknown>[]
  /** registers an active device with one certificate serial */
  device(deviceId: string, serial: string): void
  /**
   * opens an in-memory connection with a fake peer certificate and sends CONNECT; the client's `closed`
   * resolves once the broker's side has closed too (its session is gone from the registry by then)
   */
  connect(o: ConnectOptions): Promise<{ client: PacketClient; connack: Packet }>
}

export interface ConnectOptions extends Partial<FakePeerCertificateOptions> {
  serial: string
  clientId?: string
  keepalive?: number
  remoteAddress?: string
  /** no peer certificate at all */
  noCertificate?: boolean
  will?: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean }
  clean?: boolean
  protocolVersion?: 4 | 5
}

/**
 * The socket-free data plane (createMqttCore) with a fake directory and a fixed clock, closed when the
 * test finishes. Connections are in-memory duplex pairs that look like authorized TLSSockets.
 */
export async function startCore(
  opts: { limits?: BrokerLimitsInput; clock?: FixedClock; timers?: Timers; limitsSource?: DeviceLimitsSource } = {},
): Promise<CoreHarness> {
  const clock = opts.clock ?? fixedClock('2026-01-01T00:00:00Z')
  const directory = createFakeDirectory(clock)
  const { log, records } = createRecordingLogger()
  const core = createMqttCore(
    {
      directory,
      log,
      clock,
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.limitsSource ? { limitsSource: opts.limitsSource } : {}),
    },
    resolveLimits(opts.limits),
  )
  await core.start()
  const clients: PacketClient[] = []
  onTestFinished(async () => {
    for (const c of clients) c.end()
    await core.close()
  })

  return {
    core,
    directory,
    clock,
    logs: records,
    device(deviceId, serial) {
      directory.addCertificate(deviceId, serial)
    },
    async connect(o) {
      const [brokerSide, deviceSide] = duplexPair()
      const cn = o.cn === undefined ? (o.clientId ?? 'dev-1') : o.cn
      const peer = o.noCertificate ? null : fakePeerCertificate({ ...o, cn, serial: o.serial })
      asTlsPeer(brokerSide, peer, o.remoteAddress)
      // registered before the broker's own close listeners; awaiting it resumes after all of them ran
      const brokerSideClosed = new Promise<void>((r) => brokerSide.once('close', () => r()))
      core.handle(brokerSide)
      const protocolVersion = o.protocolVersion ?? 4
      const raw = packetClient(deviceSide, protocolVersion)
      const client: PacketClient = { ...raw, closed: Promise.all([raw.closed, brokerSideClosed]).then(() => undefined) }
      clients.push(client)
      client.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion,
        clientId: o.clientId ?? (typeof cn === 'string' ? cn : 'dev-1'),
        clean: o.clean ?? true,
        keepalive: o.keepalive ?? 60,
        ...(o.will ? { will: o.will } : {}),
      })
      const connack = await client.next()
      return { client, connack }
    },
  }
}

export interface BrokerHarness {
  broker: Broker
  port: number
  directory: FakeDirectory
  logs: Record<string, unknown>[]
}

/**
 * A real createBroker on 127.0.0.1, port 0, with the fake directory and the system clock (TLS checks
 * validity against real time anyway); closed when the test finishes.
 */
export async function startBroker(
  serverTls: { key: string; cert: string; ca: string },
  opts: { limits?: BrokerLimitsInput; directory?: FakeDirectory; proxyProtocol?: ProxyProtocolInput } = {},
): Promise<BrokerHarness> {
  const directory = opts.directory ?? createFakeDirectory()
  const { log, records } = createRecordingLogger()
  const broker = createBroker(
    { directory, log, clock: systemClock },
    {
      port: 0,
      tls: serverTls,
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.proxyProtocol ? { proxyProtocol: opts.proxyProtocol } : {}),
    },
  )
  onTestFinished(() => broker.close())
  const { port } = await broker.listen()
  return { broker, port, directory, logs: records }
}
