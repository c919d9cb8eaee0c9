import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { resolveAiBridgeOptions } from '../../../broker/ai-bridge/options.ts'
import type { DevicePublish } from '../../../broker/create-mqtt-core.ts'
import { attachTelemetryRoutes, type TelemetryRoute } from '../../../broker/telemetry-routes/telemetry-routes.ts'
import { isPrivateAddress } from '../../../certs/private-address.ts'
import { systemClock } from '../../../certs/index.ts'
import { waitFor } from '../../helpers/wait.ts'

/** A loopback receiver answering `status` and recording the messages of each POST. */
async function receiver(status = 200) {
  const messages: { deviceId: string; data: Record<string, unknown> }[] = []
  let posts = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      posts++
      if (status < 300) messages.push(...JSON.parse(Buffer.concat(chunks).toString()).messages)
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, messages, posts: () => posts }
}

function attach(route: Partial<TelemetryRoute> & { url: string }, settings: Record<string, Record<string, unknown>> = {}) {
  let publish: ((m: DevicePublish) => void) | undefined
  const routes = attachTelemetryRoutes(
    { onDevicePublish: (l) => ((publish = l), () => {}), connection: () => undefined },
    {
      clock: systemClock,
      log: pino({ level: 'silent' }),
      routes: () => [
        { id: 'rt_1', group: null, secret: 'k', batchSize: 10, batchMs: 100, queueMax: 100, redact: false, consent: false, ...route },
      ],
      onEvent: () => () => {},
      deviceContext: (id) => ({ tier: 'standard', group: null, settings: settings[id] ?? {} }),
      redaction: resolveAiBridgeOptions({}),
    },
    { allowPrivateTargets: true },
  )
  onTestFinished(() => routes.detach())
  const send = (deviceId: string, data: unknown) =>
    publish?.({
      deviceId,
      topic: `devices/${deviceId}/telemetry`,
      kind: 'telemetry',
      subtopic: [],
      payload: Buffer.from(JSON.stringify(data)),
      qos: 0,
      receivedAtMs: 0,
    })
  return { routes, send }
}

describe('telemetry routes', () => {
  it("redact applies the AI bridge's redaction; consent skips devices that said ai.consent: false", async () => {
    const http = await receiver()
    const { routes, send } = attach({ url: http.url, redact: true, consent: true }, { 'd-2': { ai: { consent: false } } })
    await waitFor(() => routes.status('rt_1') !== undefined, 2000, 'the route loads')
    send('d-2', { temp: 1 })
    send('d-1', { temp: 20, note: 'mail ops@example.com', password: 'hunter2' })
    await waitFor(() => routes.status('rt_1')?.delivered === 1, 5000, 'the batch delivered')
    expect(http.messages[0]).toMatchObject({ deviceId: 'd-1', data: { temp: 20, note: 'mail [email]' } })
    expect(http.messages[0]!.data).not.toHaveProperty('password')
    expect(routes.status('rt_1')).toMatchObject({ received: 2, delivered: 1, skipped: 1 })
  })

  it('drops a batch the endpoint refuses with a 4xx (counted as failed, no retry)', async () => {
    const http = await receiver(400)
    const { routes, send } = attach({ url: http.url })
    await waitFor(() => routes.status('rt_1') !== undefined, 2000, 'the route loads')
    send('d-1', { temp: 1 })
    await waitFor(() => routes.status('rt_1')?.failed === 1, 5000, 'the refused batch')
    expect(routes.status('rt_1')).toMatchObject({ delivered: 0, retries: 0, lastError: 'HTTP 400' })
    expect(http.posts()).toBe(1)
  })

  it('refuses a loopback target at delivery unless allowed', async () => {
    const http = await receiver()
    let publish: ((m: DevicePublish) => void) | undefined
    const routes = attachTelemetryRoutes(
      { onDevicePublish: (l) => ((publish = l), () => {}), connection: () => undefined },
      {
        clock: systemClock,
        log: pino({ level: 'silent' }),
        routes: () => [
          { id: 'rt_1', url: http.url, group: null, secret: 'k', batchSize: 1, batchMs: 100, queueMax: 10, redact: false, consent: false },
        ],
        onEvent: () => () => {},
        deviceContext: () => ({ tier: 'standard', group: null, settings: {} }),
        redaction: resolveAiBridgeOptions({}),
      },
    )
    onTestFinished(() => routes.detach())
    await waitFor(() => routes.status('rt_1') !== undefined, 2000, 'the route loads')
    publish?.({
      deviceId: 'd',
      topic: 'devices/d/telemetry',
      kind: 'telemetry',
      subtopic: [],
      payload: Buffer.from('{"a":1}'),
      qos: 0,
      receivedAtMs: 0,
    })
    await waitFor(() => routes.status('rt_1')?.failed === 1, 5000, 'the refused target')
    expect(routes.status('rt_1')?.lastError).toMatch(/non-public/)
    expect(http.posts()).toBe(0)
  })

  it.each([
    ['127.0.0.1', true],
    ['10.0.0.1', true],
    ['172.20.1.1', true],
    ['192.168.0.10', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['::1', true],
    ['[::1]', true],
    ['fe80::1', true],
    ['fd12::1', true],
    ['::ffff:10.0.0.1', true],
    ['8.8.8.8', false],
    ['2606:4700::1111', false],
    ['example.com', false],
  ])('isPrivateAddress(%s) is %s', (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected)
  })
})
