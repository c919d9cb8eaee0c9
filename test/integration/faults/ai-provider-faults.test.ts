import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { chatCompletion } from '../../helpers/ai-stubs.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

// What a failing provider does to the wire. 429 with Retry-After, repeated 500s and a plain time-out are
// covered call by call in test/integration/ai-bridge/providers-http.test.ts; here each fault meets the
// running product under load, to show the bridge degrades and the broker does not.
// The matrix runs against both HTTP providers: the OpenAI-compatible one and the webhook.
type Fault = 'hang' | 'reset' | 'garbage' | 'slow' | 'rate-limited'
type Kind = 'openai' | 'webhook'
const LATE: Record<Kind, unknown> = { openai: chatCompletion({ summary: 'late', anomalies: [] }).body, webhook: { summary: 'late' } }
const FAULTS: Record<Fault, (req: IncomingMessage, res: ServerResponse, kind: Kind) => void> = {
  hang: () => {}, // never answers
  reset: (req) => req.socket.resetAndDestroy(),
  garbage: (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices": [{"message": <html>'),
  slow: (_req, res, kind) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(LATE[kind])), 400) // the fault: a slow provider
  },
  'rate-limited': (_req, res) =>
    res.writeHead(429, { 'retry-after': '30', 'content-type': 'application/json' }).end('{"error":"slow down"}'),
}

async function provider(fault: Fault, kind: Kind): Promise<{ url: string; calls: () => number }> {
  let calls = 0
  const server = createServer((req, res) => {
    calls++
    req.resume()
    req.on('end', () => FAULTS[fault](req, res, kind))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, calls: () => calls }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
const p95 = (xs: number[]) => sorted(xs)[Math.ceil(xs.length * 0.95) - 1]!

describe('an AI provider that fails under load', () => {
  it.each((['openai', 'webhook'] as const).flatMap((kind) => (Object.keys(FAULTS) as Fault[]).map((fault) => [kind, fault] as const)))(
    '%s provider, %s: the bridge degrades (bounded queue, failures counted, breaker or drops) and other devices keep their publish latency',
    async (kind, fault) => {
      const stub = await provider(fault, kind)
      const dataDir = join(tempDir(), 'data')
      const ai = {
        windowing: { messages: 1, seconds: 0 },
        concurrency: 2,
        queue: { maxMessages: 20, perDevice: 10 },
        providers:
          kind === 'openai'
            ? { openai: { baseUrl: stub.url, model: 'm', timeoutMs: 1000 } }
            : { webhook: { url: stub.url, secretEnv: 'GATEHOUSE_TEST_WEBHOOK_SECRET', timeoutMs: 1000 } },
        tiers: {
          standard: {
            provider: kind,
            model: 'm',
            limits: { requestsPerMinute: 6000, burst: 1000, dailyRequests: 100_000, dailyTokens: 10_000_000 },
          },
        },
        retries: { max: 1, baseDelayMs: 50, maxDelayMs: 200 },
        circuitBreaker: { failures: 3, cooldownMs: 60_000 },
      }
      const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, ai } as never, {}), {
        log: pino({ level: 'silent' }),
        env: { GATEHOUSE_TEST_WEBHOOK_SECRET: 'a-webhook-secret' },
      })
      onTestFinished(() => gatehouse.close())
      const device = async (id: string) => {
        const issued = await gatehouse.control.authority.createDevice({ id }, 'operator:test')
        return connectDevice(gatehouse.mqtt.port, {
          deviceId: id,
          cert: issued.certificatePem,
          key: issued.privateKey!.pem,
          ca: issued.chainPem,
          serial: issued.serial,
        })
      }
      const [noisy, quiet] = await Promise.all([device('noisy-1'), device('quiet-1')])
      const roundTrip = async () => {
        const t = performance.now()
        await quiet.publishAsync('devices/quiet-1/telemetry', '{}', { qos: 1 })
        return performance.now() - t
      }
      const before: number[] = []
      for (let i = 0; i < 10; i++) before.push(await roundTrip())

      // 40 telemetry messages (within the per-device packet rate) into a provider that fails, while the quiet device keeps publishing
      const flood = Promise.all(
        Array.from({ length: 40 }, (_, i) => noisy.publishAsync('devices/noisy-1/telemetry', JSON.stringify({ i }), { qos: 1 })),
      )
      const during: number[] = []
      for (let i = 0; i < 20; i++) during.push(await roundTrip())
      await flood
      await waitFor(() => stub.calls() > 0, 10_000, 'the provider called')
      const stats = gatehouse.ai!.stats()
      expect(stats.received).toBeGreaterThanOrEqual(40)
      expect(stats.queueDepth).toBeLessThanOrEqual(20)
      expect(stats.dropped + stats.failed + stats.providers[kind]!.circuitRejected).toBeGreaterThan(0)
      // the broker does not degrade: the quiet device's PUBACK round trip stays within a generous bound
      expect(p95(during), `before ${sorted(before).join(',')} during ${sorted(during).join(',')}`).toBeLessThan(
        Math.max(500, p95(before) * 5),
      )
    },
    30_000,
  )
})
