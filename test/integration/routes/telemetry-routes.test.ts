import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { MqttClient } from 'mqtt'

interface Received {
  path: string
  body: string
  headers: IncomingMessage['headers']
  messages: { deviceId: string; subtopic: string; data: Record<string, unknown> }[]
}

/** A receiver on loopback: records every POST; answers `status()` (200 unless a test changes it). */
function receiver() {
  const requests: Received[] = []
  let answer = 200
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const status = answer
      if (status === 200) requests.push({ path: req.url ?? '', body, headers: req.headers, messages: JSON.parse(body).messages })
      else requests.push({ path: req.url ?? '', body, headers: req.headers, messages: [] })
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'thanks' : 'busy')
    })
  })
  return {
    requests,
    delivered: (path: string) => requests.filter((r) => r.path === path).flatMap((r) => r.messages),
    answerWith: (status: number) => void (answer = status),
    listen: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

const sign = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

describe('telemetry routes in the running product', () => {
  let gatehouse: Gatehouse
  let base: string
  const http = receiver()
  const devices: MqttClient[] = []
  let token: string
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-routes-'))

  async function device(id: string, group: string): Promise<MqttClient> {
    const issued = await gatehouse.control.authority.createDevice({ id, group }, 'operator:test')
    const client = await connectDevice(gatehouse.mqtt.port, {
      deviceId: id,
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    })
    devices.push(client)
    return client
  }

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${gatehouse.http.url}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  beforeAll(async () => {
    base = await http.listen()
    const config = loadConfig(
      { dataDir: join(dir, 'data'), mqttPort: 0, httpPort: 0, aiEnabled: false, routes: { allowPrivateTargets: true } },
      {},
    )
    gatehouse = await startGatehouse(config, { log: pino({ level: 'silent' }) })
    token = (await gatehouse.control.apiKeys.create({ name: 'router', scopes: ['routes:read', 'routes:write'] }, 'operator:test')).token
  })
  afterAll(async () => {
    for (const d of devices) await d.endAsync()
    await gatehouse?.close()
    await http.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("delivers a group's telemetry, and nothing of other groups, in signed batches of at most batchSize", async () => {
    const created = await api('POST', '/routes', { url: `${base}/pumps`, group: 'pumps', batchSize: 4, batchMs: 200 })
    expect(created.status).toBe(201)
    const { id, secret } = created.body as { id: string; secret: string }
    const pump = await device('pump-1', 'pumps')
    const fan = await device('fan-1', 'fans')
    await waitFor(() => gatehouse.routes.status(id) !== undefined, 5000, 'the broker loads the route')
    for (let i = 0; i < 3; i++) await fan.publishAsync('devices/fan-1/telemetry', JSON.stringify({ rpm: i }), { qos: 1 })
    for (let i = 0; i < 10; i++) await pump.publishAsync('devices/pump-1/telemetry/flow', JSON.stringify({ lpm: i }), { qos: 1 })
    await waitFor(() => gatehouse.routes.status(id)?.delivered === 10, 10_000, 'ten pump messages delivered')

    const batches = http.requests.filter((r) => r.path === '/pumps')
    for (const b of batches) {
      expect(b.headers['x-gatehouse-signature']).toBe(sign(secret, b.body))
      expect(JSON.parse(b.body)).toMatchObject({ routeId: id, timestamp: Number(b.headers['x-gatehouse-timestamp']) })
      expect(b.messages.length).toBeLessThanOrEqual(4)
    }
    expect(batches.length).toBeGreaterThanOrEqual(3)
    expect(http.delivered('/pumps').map((m) => [m.deviceId, m.subtopic, m.data.lpm])).toEqual(
      Array.from({ length: 10 }, (_, i) => ['pump-1', 'flow', i]),
    )
    expect(gatehouse.routes.status(id)).toMatchObject({ received: 10, delivered: 10, overflow: 0 })
    await api('DELETE', `/routes/${id}`)
  })

  it('survives the endpoint answering 503 for a while: retries, loses nothing within the queue bound, counts the overflow', async () => {
    // a batch leaves only when it is full (batchMs at its maximum): with a short timer a loaded box sent the
    // first batch before 5 publishes had arrived, and the counts below depend on batches of exactly 5
    const created = await api('POST', '/routes', { url: `${base}/busy`, group: 'tanks', batchSize: 5, batchMs: 60_000, queueMax: 20 })
    const { id } = created.body as { id: string }
    const tank = await device('tank-1', 'tanks')
    await waitFor(() => gatehouse.routes.status(id) !== undefined, 5000, 'the broker loads the route')
    http.answerWith(503)
    // 5 go out in the first batch (retried), 20 wait in the queue, 5 overflow
    for (let i = 0; i < 30; i++) await tank.publishAsync('devices/tank-1/telemetry', JSON.stringify({ level: i }), { qos: 1 })
    await waitFor(() => (gatehouse.routes.status(id)?.retries ?? 0) >= 2, 10_000, 'two retries against 503')
    http.answerWith(200)
    await waitFor(() => gatehouse.routes.status(id)?.delivered === 25, 15_000, '25 messages after the endpoint recovered')

    expect(http.delivered('/busy').map((m) => m.data.level)).toEqual(Array.from({ length: 25 }, (_, i) => i))
    const listed = await api('GET', `/routes/${id}`)
    expect(listed.body.status).toMatchObject({ received: 30, delivered: 25, overflow: 5, failed: 0, queued: 0 })
    expect((listed.body.status as { retries: number }).retries).toBeGreaterThanOrEqual(2)
    const metricsKey = (await gatehouse.control.apiKeys.create({ name: 'scraper', scopes: ['metrics:read'] }, 'operator:test')).token
    const metrics = await (await fetch(`${gatehouse.http.url}/metrics`, { headers: { authorization: `Bearer ${metricsKey}` } })).text()
    expect(metrics).toMatch(/^gatehouse_route_messages_total\{outcome="overflow"\} 5$/m)
    await api('DELETE', `/routes/${id}`)
  })

  it("a device moved to another group mid-session: its telemetry goes to its new group's route, no longer to its old one's", async () => {
    const oldRoute = (await api('POST', '/routes', { url: `${base}/heaters`, group: 'heaters', batchSize: 1 })).body as { id: string }
    const newRoute = (await api('POST', '/routes', { url: `${base}/coolers`, group: 'coolers', batchSize: 1 })).body as { id: string }
    const unit = await device('unit-1', 'heaters')
    await waitFor(() => gatehouse.routes.status(newRoute.id) !== undefined, 5000, 'the broker loads the routes')
    await unit.publishAsync('devices/unit-1/telemetry', JSON.stringify({ n: 1 }), { qos: 1 })
    await waitFor(() => http.delivered('/heaters').length === 1, 5000, 'the first message on the heaters route')

    await gatehouse.control.authority.updateDevice('unit-1', { group: 'coolers' }, 'operator:test')
    // publish until the coolers route gets one (bounded): the hand-off reads the live session's group
    for (let i = 2; i < 40 && gatehouse.routes.status(newRoute.id)?.received === 0; i++) {
      await unit.publishAsync('devices/unit-1/telemetry', JSON.stringify({ n: i }), { qos: 1 })
      await waitFor(() => gatehouse.routes.status(newRoute.id)?.received !== 0, 50, 'the coolers route').catch(() => undefined)
    }
    await unit.publishAsync('devices/unit-1/telemetry', JSON.stringify({ n: 'moved' }), { qos: 1 })
    await waitFor(() => http.delivered('/coolers').some((m) => m.data.n === 'moved'), 5000, 'the message on the coolers route')
    // after the move the heaters route is handed nothing more: whatever it got before was skipped at build
    const heaters = gatehouse.routes.status(oldRoute.id)!
    expect(heaters.received).toBe(heaters.delivered + heaters.skipped)
    expect(http.delivered('/heaters').map((m) => m.data.n)).toEqual([1])
    await api('DELETE', `/routes/${oldRoute.id}`)
    await api('DELETE', `/routes/${newRoute.id}`)
  })

  it('stops delivering when the route is deleted', async () => {
    const first = await api('POST', '/routes', { url: `${base}/old`, group: 'valves', batchSize: 1 })
    const oldId = (first.body as { id: string }).id
    const valve = await device('valve-1', 'valves')
    await waitFor(() => gatehouse.routes.status(oldId) !== undefined, 5000, 'the broker loads the route')
    await valve.publishAsync('devices/valve-1/telemetry', JSON.stringify({ open: true }), { qos: 1 })
    await waitFor(() => http.delivered('/old').length === 1, 5000, 'one message before the deletion')

    expect((await api('DELETE', `/routes/${oldId}`)).status).toBe(200)
    await waitFor(() => gatehouse.routes.status(oldId) === undefined, 5000, 'the broker drops the route')
    const second = await api('POST', '/routes', { url: `${base}/new`, group: 'valves', batchSize: 1 })
    const newId = (second.body as { id: string }).id
    await waitFor(() => gatehouse.routes.status(newId) !== undefined, 5000, 'the broker loads the new route')
    await valve.publishAsync('devices/valve-1/telemetry', JSON.stringify({ open: false }), { qos: 1 })
    // the later positive marker: the new route got the message the deleted one did not
    await waitFor(() => http.delivered('/new').length === 1, 5000, 'the message on the new route')
    expect(http.delivered('/old')).toHaveLength(1)
    expect((await api('GET', '/routes')).body.items).toEqual([expect.objectContaining({ id: newId })])
    expect((await gatehouse.control.store.listAudit({ action: 'route.deleted' })).map((a) => a.subject)).toContain(oldId)
  })
})
