import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import pino from 'pino'
import { createBroker } from '../../broker/index.ts'
import { systemClock } from '../../certs/index.ts'
import { makeBrokerPki } from '../helpers/broker-pki.ts'
import { createFakeDirectory } from '../helpers/fake-directory.ts'

/**
 * The broker under fuzz, in its own process (started by fuzz-target.ts over IPC), so that a crash is
 * seen as an exit, its memory is its own, and an input that kills it can be replayed on a fresh one.
 * Real createBroker on 127.0.0.1:0 with the fake directory; the limits that would refuse a fuzzer's
 * reconnects (one CONNECT per case) are raised, every other limit is the default.
 */

export type FuzzBrokerRequest = { op: 'device'; deviceId: string } | { op: 'publish'; topic: string; payload: string } | { op: 'state' }

export interface FuzzBrokerState {
  connectedClients: number
  rss: number
  heapUsed: number
  /** log records at level error or above, and uncaught errors */
  errors: string[]
  tlsFailures: Record<string, number>
}

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const errors: string[] = []
const record = (what: string) => void (errors.length < 100 && errors.push(what.slice(0, 500)))
process.on('uncaughtException', (err) => {
  record(`uncaught: ${err.stack ?? err}`)
  process.send?.({ reply: 'crash', error: String(err.stack ?? err) })
  process.exit(70)
})
process.on('unhandledRejection', (err) => record(`unhandled rejection: ${(err as Error)?.stack ?? err}`))

const log = pino(
  { level: 'warn' },
  {
    write(line: string) {
      const r = JSON.parse(line) as { level: number; msg?: string; err?: { stack?: string } }
      if (r.level >= 50) record(`${r.msg}: ${r.err?.stack ?? ''}`)
    },
  },
)

const pki = await makeBrokerPki('Fuzz Test')
const directory = createFakeDirectory()
const broker = createBroker(
  { directory, log, clock: systemClock },
  {
    port: 0,
    tls: pki.serverTls,
    limits: {
      connectRatePerClientId: { ratePerSecond: 10_000, burst: 10_000 },
      connectionRatePerIp: { ratePerSecond: 10_000, burst: 10_000 },
    },
  },
)
const { port } = await broker.listen()

process.on('message', async (m: FuzzBrokerRequest & { seq: number }) => {
  const reply = (value: unknown) => process.send?.({ seq: m.seq, value })
  if (m.op === 'device') {
    const creds = await pki.device(m.deviceId)
    directory.addCertificate(m.deviceId, creds.serial)
    return reply(creds)
  }
  if (m.op === 'publish') {
    return broker.aedes.publish(
      { cmd: 'publish', topic: m.topic, payload: Buffer.from(m.payload), qos: 1, retain: false, dup: false },
      () => reply(true),
    )
  }
  gc()
  const memory = process.memoryUsage()
  const state: FuzzBrokerState = {
    connectedClients: broker.aedes.connectedClients,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    errors,
    tlsFailures: Object.fromEntries(broker.stats().tlsFailures),
  }
  reply(state)
})
process.send?.({ reply: 'ready', port })
