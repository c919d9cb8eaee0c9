import pino from 'pino'
import { attachAiBridge, resolveAiBridgeOptions, type DevicePublish } from '../broker/index.ts'
import { systemClock } from '../certs/index.ts'
import { printTable, percentile } from './table.ts'

const MESSAGES = Number(process.env.BENCH_HANDOFF_MESSAGES ?? 200_000)
const DEVICES = 100

/**
 * The AI bridge's hand-off: the time the broker's publish path spends in the bridge's listener for one
 * telemetry message (size check and a push onto the device's queue), measured per call with
 * performance.now() in this process. The bridge runs with its defaults (local analyzer) and in-memory
 * usage and insights; the asynchronous work after the hand-off is not part of this figure (the
 * throughput benchmark measures the whole cost, bridge on against off).
 */
export async function aiHandoffBenchmark(): Promise<Record<string, unknown>> {
  const usage = new Map<string, { requests: number; tokens: number }>()
  let listener: ((m: DevicePublish) => void) | undefined
  const bridge = attachAiBridge(
    {
      onDevicePublish: (l) => ((listener = l), () => (listener = undefined)),
      publishToDevice: async () => {},
      isConnected: () => true,
    },
    {
      clock: systemClock,
      log: pino({ level: 'silent' }),
      usage: {
        lease: (id, day, requests, max) => {
          const u = usage.get(`${id}/${day}`) ?? { requests: 0, tokens: 0 }
          const granted = Math.max(0, Math.min(requests, max - u.requests))
          usage.set(`${id}/${day}`, { ...u, requests: u.requests + granted })
          return { granted, requests: u.requests + granted, tokens: u.tokens }
        },
        settle: (settlements) => {
          for (const { deviceId: id, day, returnedRequests, tokens } of settlements) {
            const u = usage.get(`${id}/${day}`) ?? { requests: 0, tokens: 0 }
            usage.set(`${id}/${day}`, { requests: Math.max(0, u.requests - returnedRequests), tokens: u.tokens + tokens })
          }
        },
      },
      insights: { append: () => {}, list: () => [] },
      deviceContext: () => ({ tier: 'standard', group: null, settings: {} }),
    },
    resolveAiBridgeOptions({}),
  )
  const payload = Buffer.from(JSON.stringify({ temperature: 21.5, humidity: 40, vibration: 0.02 }))
  const samples = new Float64Array(MESSAGES)
  const publish = listener as (m: DevicePublish) => void
  for (let i = 0; i < MESSAGES; i++) {
    const deviceId = `dev-${i % DEVICES}`
    const m: DevicePublish = {
      deviceId,
      topic: `devices/${deviceId}/telemetry`,
      kind: 'telemetry',
      subtopic: [],
      payload,
      qos: 0,
      receivedAtMs: Date.now(),
    }
    const t = performance.now()
    publish(m)
    samples[i] = performance.now() - t
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r)) // let the bridge drain, as the event loop would
  }
  await bridge.idle()
  await bridge.detach()
  const us = [...samples].map((ms) => ms * 1000)
  const result = {
    messages: MESSAGES,
    handoffUs: { p50: percentile(us, 50), p99: percentile(us, 99), max: us.reduce((a, b) => Math.max(a, b), 0) },
    stats: bridge.stats(),
  }
  printTable([
    ['AI bridge hand-off per telemetry message', 'microseconds', 'aim'],
    ['p50', result.handoffUs.p50.toFixed(2), ''],
    ['p99', result.handoffUs.p99.toFixed(2), '< 1000'],
  ])
  return result
}
