import { spawn } from 'node:child_process'
import pino from 'pino'
import { attachTelemetryRoutes, resolveAiBridgeOptions, type DevicePublish } from '../broker/index.ts'
import { systemClock } from '../certs/index.ts'
import { alternate, envInt, median, printTable } from './table.ts'

const MESSAGES = envInt('BENCH_ROUTES_MESSAGES', 100_000)
const REPS = envInt('BENCH_ROUTES_REPS', 3)
const DEVICES = 100

/** A receiver in its own process (so its CPU is not counted here) that answers 204 to every POST. */
async function startReceiver(): Promise<{ url: string; stop(): void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s=require('node:http').createServer((q,r)=>{q.resume();q.on('end',()=>r.writeHead(204).end())});` +
        `s.listen(0,'127.0.0.1',()=>console.log(s.address().port))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const port = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())))
  return { url: `http://127.0.0.1:${port}/in`, stop: () => child.kill() }
}

/** One run: MESSAGES telemetry messages through the publish listeners; CPU of this process per message. */
async function run(mode: 'off' | 'on', url: string): Promise<number> {
  let listener: ((m: DevicePublish) => void) | undefined
  const routes =
    mode === 'on'
      ? attachTelemetryRoutes(
          {
            onDevicePublish: (l) => ((listener = l), () => (listener = undefined)),
            connection: () => undefined,
          },
          {
            clock: systemClock,
            log: pino({ level: 'silent' }),
            routes: () => [
              {
                id: 'rt_bench',
                url,
                group: null,
                secret: 's'.repeat(43),
                batchSize: 100,
                batchMs: 1000,
                queueMax: 100_000,
                redact: false,
                consent: false,
              },
            ],
            onEvent: () => () => {},
            deviceContext: () => ({ tier: 'standard', group: null, settings: {} }),
            redaction: resolveAiBridgeOptions({}),
          },
          { allowPrivateTargets: true },
        )
      : undefined
  await new Promise((r) => setImmediate(r)) // the routes load
  const payload = Buffer.from(JSON.stringify({ temperature: 21.5, humidity: 40, vibration: 0.02 }))
  const start = process.cpuUsage()
  for (let i = 0; i < MESSAGES; i++) {
    const deviceId = `dev-${i % DEVICES}`
    listener?.({
      deviceId,
      topic: `devices/${deviceId}/telemetry`,
      kind: 'telemetry',
      subtopic: [],
      payload,
      qos: 0,
      receivedAtMs: Date.now(),
    })
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r)) // let deliveries run, as the event loop would
  }
  await routes?.idle()
  const used = process.cpuUsage(start)
  const lost = routes ? (routes.status('rt_bench')?.overflow ?? 0) : 0
  routes?.detach()
  if (lost > 0) console.warn(`(${mode}: ${lost} messages overflowed the queue; the figure covers fewer deliveries)`)
  return (used.user + used.system) / MESSAGES
}

/**
 * Telemetry routes' cost: CPU microseconds of this process per telemetry message with one fleet route
 * (batches of 100, signed, POSTed to a receiver in another process over loopback) against the same run
 * without routes. The figure covers the hand-off, batching, JSON parsing, signing and the HTTP client;
 * the broker's own per-message work (TLS, MQTT parsing) is the same in both and not in either.
 * Runs alternate off/on, REPS times each; the medians are shown.
 */
export async function routesBenchmark(): Promise<Record<string, unknown>> {
  const receiver = await startReceiver()
  const cpu: Record<'off' | 'on', number[]> = { off: [], on: [] }
  try {
    await run('on', receiver.url) // warm-up: JIT, the HTTP client's connection pool
    for (let rep = 0; rep < REPS; rep++)
      for (const mode of alternate(['off', 'on'] as const, rep)) cpu[mode].push(await run(mode, receiver.url))
  } finally {
    receiver.stop()
  }
  const off = median(cpu.off)
  const on = median(cpu.on)
  printTable([
    ['telemetry routes, CPU per message', 'microseconds'],
    ['without routes', off.toFixed(2)],
    ['one fleet route, batches of 100', on.toFixed(2)],
    ['cost of the route', (on - off).toFixed(2)],
  ])
  return { messages: MESSAGES, reps: REPS, cpuUsPerMessage: { off, on, route: on - off }, runs: cpu }
}
