// A Gatehouse broker in its own process for the benchmarks: the real composition (loadConfig +
// startGatehouse, compiled) on a prepared data dir, with the limits raised for a loopback load generator.
//   node --import tsx bench/brokers/gatehouse-broker.ts <dataDir> [--consume=subscribe|listener] [--ai-off]
//        [--limits=file] [--log-level=<level>]
// --limits=file: no BENCH_LIMITS; the data dir's gatehouse.json and the defaults decide (the abuse bench
// raises only the per-address limits there and keeps every per-device budget as shipped).
// --log-level: default 'warn'. Everything else is Gatehouse's default configuration (the AI bridge is on
// by default). Sends { type: 'listening', port, httpUrl } over IPC; closes on { type: 'close' } or when
// the parent goes.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BENCH_LIMITS } from './bench-limits.ts'
import { onCloseRequest, serveConsumer, type ChildMessage } from './ipc.ts'

// the compiled code Gatehouse ships (dist/, built by launch.ts first); BENCH_GATEHOUSE=tsx: the sources through
// tsx (its transform adds a __name() call to every function it creates: ~3% of the publish path's CPU)
const fromDist = process.env.BENCH_GATEHOUSE !== 'tsx'
const load = <T>(module: string): Promise<T> =>
  import(fromDist ? pathToFileURL(join(import.meta.dirname, '../../dist', `${module}.js`)).href : `../../${module}.ts`)
const { configSchema, loadConfig } = await load<typeof import('../../config.ts')>('config')
const { startGatehouse } = await load<typeof import('../../gatehouse.ts')>('gatehouse')
const { createLogger } = await load<typeof import('../../logger.ts')>('logger')

const dataDir = process.argv[2]
if (!dataDir) throw new Error('usage: gatehouse-broker.ts <dataDir> [--consume=subscribe|listener]')
const consume = process.argv.find((a) => a.startsWith('--consume='))?.slice('--consume='.length)

const known = (key: string) => key in (configSchema.properties ?? {})
// every listener on an ephemeral port (the app HTTP API too, where this checkout has one)
const httpPort = known('httpPort') ? { httpPort: 0 } : {}
const aiOff = process.argv.includes('--ai-off')
const limits = process.argv.includes('--limits=file') ? {} : { limits: BENCH_LIMITS }
const logLevel = process.argv.find((a) => a.startsWith('--log-level='))?.slice('--log-level='.length) ?? 'warn'
if (aiOff && !known('aiEnabled')) throw new Error('--ai-off: this checkout has no aiEnabled setting')
const config = loadConfig(
  { dataDir, mqttPort: 0, ...httpPort, ...(aiOff && { aiEnabled: false }), logLevel, logFormat: 'json', ...limits } as Parameters<
    typeof loadConfig
  >[0],
  process.env,
)
const log = createLogger({ level: config.logLevel, format: config.logFormat })
const gatehouse = await startGatehouse(config, { log })

if (consume === 'listener') {
  // Gatehouse's own consumer API (what the AI bridge and apps use)
  const onPayload = serveConsumer()
  gatehouse.broker.onDevicePublish((m) => onPayload(m.payload))
} else if (consume === 'subscribe') {
  // the same in-process subscription as the plain aedes reference
  const onPayload = serveConsumer()
  await new Promise<void>((resolve) =>
    gatehouse.broker.aedes.subscribe(
      'devices/+/telemetry/#',
      (packet, done) => {
        onPayload(packet.payload as Buffer)
        done()
      },
      resolve,
    ),
  )
}

onCloseRequest(() => gatehouse.close())
process.send?.({ type: 'listening', port: gatehouse.mqtt.port, httpUrl: gatehouse.http.url } satisfies ChildMessage)
