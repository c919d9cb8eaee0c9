import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'

// A route's endpoint that fails, met by the running product: each fault's route keeps its queue bounded
// (overflow counted), loses nothing within that bound once the endpoint recovers, and other devices'
// messages keep their publish-to-deliver latency. What each fault does is in README "Routes".
type Mode = 'ok' | 'hang' | 'reset' | 'garbage' | 'slow' | '429' | '429-long' | '400' | 'junk-200'
const ANSWER: Record<Mode, (req: IncomingMessage, res: ServerResponse) => void> = {
  ok: (_req, res) => res.writeHead(200).end('thanks'),
  hang: () => {}, // never answers
  reset: (req) => req.socket.resetAndDestroy(),
  garbage: (req) => req.socket.end('SSH-2.0-not-http\r\n\r\n\x00\xff'), // bytes that are not HTTP, then closed
  slow: (req, res) => {
    // a 200 whose body trickles a byte every 50 ms and never ends
    res.writeHead(200, { 'content-type': 'application/json' })
    const tick = setInterval(() => res.write(' '), 50)
    req.socket.once('close', () => clearInterval(tick))
  },
  '429': (_req, res) => res.writeHead(429, { 'retry-after': '1' }).end('slow down'),
  '429-long': (_req, res) => res.writeHead(429, { 'retry-after': '3600' }).end('come back in an hour'),
  '400': (_req, res) => res.writeHead(400).end('no'),
  'junk-200': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('\x00\x01<html>{"not": json'),
}

interface Hit {
  at: number
  mode: Mode
  levels: number[]
}

function endpoint() {
  const modes = new Map<string, Mode>()
  const hits = new Map<string, Hit[]>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? ''
      const mode = modes.get(path) ?? 'ok'
      const levels = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: { data: { level: number } }[] }).messages.map(
        (m) => m.data.level,
      )
      hits.set(path, [...(hits.get(path) ?? []), { at: performance.now(), mode, levels }])
      ANSWER[mode](req, res)
    })
  })
  return {
    set: (path: string, mode: Mode) => void modes.set(path, mode),
    hits: (path: string) => hits.get(path) ?? [],
    /** the levels the endpoint took (answered 2xx), in order, each once (delivery is at least once) */
    taken: (path: string) => [
      ...new Set((hits.get(path) ?? []).filter((h) => h.mode === 'ok' || h.mode === 'junk-200').flatMap((h) => h.levels)),
    ],
    listen: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
      ),
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
const p95 = (xs: number[]) => sorted(xs)[Math.ceil(xs.length * 0.95) - 1]!
const TIMEOUT_MS = 1000
const MAX_BACKOFF_MS = 1500

describe('route endpoint faults in the running product', () => {
  let gatehouse: Gatehouse
  let base: string
  let token: string
  let metricsToken: string
  const http = endpoint()
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-route-faults-'))

  async function device(id: string, group: string): Promise<MqttClient> {
    const issued = await gatehouse.control.authority.createDevice({ id, group }, 'operator:test')
    const client = await connectDevice(gatehouse.mqtt.port, {
      deviceId: id,
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    })
    return client
  }

  async function route(path: string, group: string, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await fetch(`${gatehouse.http.url}/v1/routes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${base}${path}`, group, batchMs: 100, ...extra }),
    })
    expect(res.status).toBe(201)
    const { id } = (await res.json()) as { id: string }
    await waitFor(() => gatehouse.routes.status(id) !== undefined, 5000, 'the broker loads the route')
    return id
  }
  const remove = (id: string) =>
    fetch(`${gatehouse.http.url}/v1/routes/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })

  const overflowMetric = async () => {
    const text = await (await fetch(`${gatehouse.http.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text()
    return Number(/^gatehouse_route_messages_total\{outcome="overflow"\} (\d+)$/m.exec(text)?.[1] ?? Number.NaN)
  }

  /**
   * Publish-to-deliver latency of a device no route fails for (its connection ends with the test: connectDevice):
   * from its publish to the message reaching a subscriber of its topic in the broker (an aedes subscription,
   * as the broker's own consumers subscribe), one message at a time.
   */
  async function deliveries(quiet: MqttClient, id: string, n: number): Promise<number[]> {
    const topic = `devices/${id}/telemetry`
    const arrived = new Map<number, number>()
    const subscriber = (packet: { payload: string | Buffer }, done: () => void) => {
      arrived.set((JSON.parse(packet.payload.toString()) as { i: number }).i, performance.now())
      done()
    }
    await new Promise<void>((resolve) => gatehouse.broker.aedes.subscribe(topic, subscriber, resolve))
    try {
      const out: number[] = []
      for (let i = 0; i < n; i++) {
        const t = performance.now()
        await quiet.publishAsync(topic, JSON.stringify({ i }), { qos: 1 })
        await waitFor(() => arrived.has(i), 10_000, `message ${i} of ${id} delivered`)
        out.push(arrived.get(i)! - t)
      }
      return out
    } finally {
      await new Promise<void>((resolve) => gatehouse.broker.aedes.unsubscribe(topic, subscriber, resolve))
    }
  }

  beforeAll(async () => {
    base = await http.listen()
    const config = loadConfig(
      {
        dataDir: join(dir, 'data'),
        mqttPort: 0,
        httpPort: 0,
        aiEnabled: false,
        routes: { allowPrivateTargets: true, timeoutMs: TIMEOUT_MS, maxBackoffMs: MAX_BACKOFF_MS },
      },
      {},
    )
    gatehouse = await startGatehouse(config, { log: pino({ level: 'silent' }) })
    token = (await gatehouse.control.apiKeys.create({ name: 'router', scopes: ['routes:read', 'routes:write'] }, 'operator:test')).token
    metricsToken = (await gatehouse.control.apiKeys.create({ name: 'scraper', scopes: ['metrics:read'] }, 'operator:test')).token
  })
  afterAll(async () => {
    await gatehouse?.close()
    await http.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it.each(['hang', 'reset', 'garbage', 'slow', '429'] as const)(
    '%s: retried, the queue bounded (overflow counted), nothing lost within the bound after recovery, the broker unaffected',
    async (fault) => {
      const path = `/${fault}`
      const quiet = await device(`quiet-${fault}`, 'quiet')
      const before = await deliveries(quiet, `quiet-${fault}`, 10)
      const overflowBefore = await overflowMetric()
      const id = await route(path, fault, { batchSize: 5, queueMax: 10, batchMs: 60_000 }) // a batch leaves at 5 messages, never on the timer, however slow the box
      const sender = await device(`${fault}-1`, fault)
      http.set(path, fault)
      // 5 go out in the first batch (retried), 10 wait in the queue, 5 overflow
      for (let i = 0; i < 20; i++) await sender.publishAsync(`devices/${fault}-1/telemetry`, JSON.stringify({ level: i }), { qos: 1 })
      await waitFor(() => (gatehouse.routes.status(id)?.retries ?? 0) >= 2, 15_000, `two retries against ${fault}`)
      const during = await deliveries(quiet, `quiet-${fault}`, 20)
      expect(gatehouse.routes.status(id)).toMatchObject({ received: 20, overflow: 5, queued: 10, delivered: 0, failed: 0 })

      http.set(path, 'ok')
      await waitFor(
        () => gatehouse.routes.status(id)?.delivered === 15,
        20_000,
        () => `15 delivered: ${JSON.stringify(gatehouse.routes.status(id))}`,
      )
      expect(http.taken(path)).toEqual(Array.from({ length: 15 }, (_, i) => i))
      expect(gatehouse.routes.status(id)).toMatchObject({ received: 20, overflow: 5, queued: 0, delivered: 15, failed: 0 })
      expect((await overflowMetric()) - overflowBefore).toBe(5)
      // the broker does not degrade: a device no route fails for keeps its publish-to-deliver latency
      expect(p95(during), `before ${sorted(before).join(',')} during ${sorted(during).join(',')}`).toBeLessThan(
        Math.max(500, p95(before) * 5),
      )
      if (fault === '429') {
        // each retry after a 429 waited at least its Retry-After (1 s), as the endpoint saw the requests
        const hits = http.hits(path)
        const gaps = hits.slice(1).flatMap((h, i) => (hits[i]!.mode === '429' ? [h.at - hits[i]!.at] : []))
        expect(gaps.length).toBeGreaterThanOrEqual(2)
        for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(1000)
      }
      await remove(id)
    },
    60_000,
  )

  it('429 with a Retry-After longer than maxBackoffMs: waits maxBackoffMs, not an hour', async () => {
    const path = '/429-long'
    const id = await route(path, 'patient', { batchSize: 1 })
    const sender = await device('patient-1', 'patient')
    http.set(path, '429-long')
    await sender.publishAsync('devices/patient-1/telemetry', JSON.stringify({ level: 0 }), { qos: 1 })
    await waitFor(() => http.hits(path).length >= 2, 10_000, 'the retry after the capped Retry-After')
    http.set(path, 'ok')
    await waitFor(() => gatehouse.routes.status(id)?.delivered === 1, 10_000, 'delivered after recovery')
    const [first, second] = http.hits(path)
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(MAX_BACKOFF_MS)
    expect(http.taken(path)).toEqual([0])
    await remove(id)
  })

  it('400 (any 4xx but 429): the batch is dropped and counted as failed, never retried; the next batch goes out', async () => {
    const path = '/400'
    const id = await route(path, 'refused', { batchSize: 1 })
    const sender = await device('refused-1', 'refused')
    http.set(path, '400')
    for (let i = 0; i < 3; i++) await sender.publishAsync('devices/refused-1/telemetry', JSON.stringify({ level: i }), { qos: 1 })
    await waitFor(() => gatehouse.routes.status(id)?.failed === 3, 10_000, 'three batches refused')
    http.set(path, 'ok')
    // a later marker: had a refused batch been retried, it would have come before this one
    await sender.publishAsync('devices/refused-1/telemetry', JSON.stringify({ level: 3 }), { qos: 1 })
    await waitFor(() => gatehouse.routes.status(id)?.delivered === 1, 10_000, 'the marker delivered')
    expect(http.hits(path).map((h) => [h.mode, h.levels])).toEqual([
      ['400', [0]],
      ['400', [1]],
      ['400', [2]],
      ['ok', [3]],
    ])
    expect(gatehouse.routes.status(id)).toMatchObject({ failed: 3, retries: 0, delivered: 1 })
    await remove(id)
  })

  it('a 2xx with a body that is not JSON is success: a route endpoint is not asked for an answer', async () => {
    const path = '/junk-200'
    const id = await route(path, 'junk', { batchSize: 2 })
    const sender = await device('junk-1', 'junk')
    http.set(path, 'junk-200')
    for (let i = 0; i < 4; i++) await sender.publishAsync('devices/junk-1/telemetry', JSON.stringify({ level: i }), { qos: 1 })
    await waitFor(() => gatehouse.routes.status(id)?.delivered === 4, 10_000, 'four delivered')
    expect(gatehouse.routes.status(id)).toMatchObject({ retries: 0, failed: 0 })
    expect(http.taken(path)).toEqual([0, 1, 2, 3])
    await remove(id)
  })
})
