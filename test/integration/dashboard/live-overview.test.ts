import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

type Overview = Record<string, unknown> & {
  refusedConnections: { subject: string; details: string }[]
  busiestDevices: { since: string; devices: { deviceId: string; messagesIn: number }[]; untracked: number }
}

/** Gatehouse on temp dirs and ephemeral ports, and a signed-in dashboard session (its cookie). */
async function running() {
  const dataDir = join(tempDir(), 'data')
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log: pino({ level: 'silent' }) })
  onTestFinished(() => gatehouse.close())
  const { control } = gatehouse
  const key = (await control.apiKeys.create({ name: 'ops-dash', scopes: ['dashboard'] }, 'operator:test')).token
  const provision = async (id: string): Promise<DeviceCredentials> => {
    const issued = await control.authority.createDevice({ id }, 'operator:test')
    return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
  }
  const signedIn = await fetch(`${gatehouse.http.url}/dashboard/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  })
  const cookie = signedIn.headers.get('set-cookie')?.split(';')[0] as string
  const get = (path: string) => fetch(`${gatehouse.http.url}${path}`, { headers: { cookie } })
  return { gatehouse, control, provision, cookie, get }
}

/** The dashboard's event stream: next(match) resolves with the first overview from now on that matches. */
async function overviewStream(url: string, cookie: string) {
  const abort = new AbortController()
  onTestFinished(() => abort.abort())
  const res = await fetch(`${url}/dashboard/api/events`, { headers: { cookie }, signal: abort.signal })
  expect(res.status).toBe(200)
  const reader = (res.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader()
  let buffered = ''
  async function nextOverview(): Promise<Overview> {
    for (;;) {
      const end = buffered.indexOf('\n\n')
      if (end >= 0) {
        const frame = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        const data = frame.split('\n').find((l) => l.startsWith('data: '))
        if (data) return JSON.parse(data.slice(6)) as Overview
        continue
      }
      const { value, done } = await reader.read()
      if (done) throw new Error('the event stream ended')
      buffered += value
    }
  }
  return {
    /** overviews are read until one matches; the stream's 15 s refresh never comes within the test's wait */
    async next(match: (o: Overview) => boolean, maxFrames = 50): Promise<Overview> {
      for (let i = 0; i < maxFrames; i++) {
        const o = await nextOverview()
        if (match(o)) return o
      }
      throw new Error(`no matching overview in ${maxFrames} frames`)
    },
  }
}

/** Resolves with `promise`, or fails after ms: well under the stream's 15 s refresh, so only a signal can answer. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

describe('the dashboard overview, live', () => {
  it('sends an overview with a refused connection as it happens, not at the next 15 s refresh', async () => {
    const { gatehouse, control, provision, cookie } = await running()
    const meter = await provision('meter-3')
    await control.authority.disableDevice('meter-3', 'operator:test')
    const stream = await overviewStream(gatehouse.http.url, cookie)
    await stream.next(() => true) // the snapshot every stream starts with
    const refusedMeter = (o: Overview) => o.refusedConnections.some((e) => e.subject === 'meter-3')
    const seen = stream.next(refusedMeter)
    expect((await attemptConnect(gatehouse.mqtt.port, meter)).connack).toBe(5)
    const o = await within(5000, seen)
    expect(o.refusedConnections.find((e) => e.subject === 'meter-3')?.details).toContain('"reason":"disabled"')
  })

  it('ranks the busiest devices by exactly the messages they published', async () => {
    const { gatehouse, provision, get } = await running()
    const counts = { 'pump-1': 3, 'valve-2': 5, 'meter-3': 1 }
    for (const [id, n] of Object.entries(counts)) {
      const client = await connectDevice(gatehouse.mqtt.port, await provision(id))
      onTestFinished(() => void client.end(true))
      // QoS 1: the PUBACK comes after the broker has counted the message
      for (let i = 0; i < n; i++) await client.publishAsync(`devices/${id}/telemetry`, JSON.stringify({ i }), { qos: 1 })
    }
    const o = (await (await get('/dashboard/api/overview')).json()) as Overview
    expect(o.busiestDevices.devices).toEqual([
      { deviceId: 'valve-2', messagesIn: 5 },
      { deviceId: 'pump-1', messagesIn: 3 },
      { deviceId: 'meter-3', messagesIn: 1 },
    ])
    expect(o.busiestDevices.untracked).toBe(0)
  })

  it("shows a device's connection history on its page: connects and disconnects with address and reason", async () => {
    const { gatehouse, control, provision, get } = await running()
    const pump = await provision('pump-1')
    const disconnect = () => new Promise<void>((resolve) => gatehouse.broker.onDeviceDisconnect(() => resolve()))
    const first = await connectDevice(gatehouse.mqtt.port, pump)
    const gone = disconnect()
    await first.endAsync()
    await gone
    const second = await connectDevice(gatehouse.mqtt.port, pump)
    onTestFinished(() => void second.end(true))
    const left = disconnect()
    await control.authority.disableDevice('pump-1', 'operator:test')
    await left
    const { connections } = (await (await get('/dashboard/api/devices/pump-1')).json()) as {
      connections: { event: string; reason: string | null; remoteAddress: string | null }[]
    }
    expect(connections.map((c) => [c.event, c.reason])).toEqual([
      ['disconnect', 'device.disabled'],
      ['connect', null],
      ['disconnect', 'client'],
      ['connect', null],
    ])
    expect(connections.map((c) => c.remoteAddress)).toEqual(Array(4).fill('127.0.0.1'))
  })

  it("shows a device's AI budget as the bridge spends it: the configured tier's, under a stored override", async () => {
    const { control, provision, get } = await running()
    await provision('pump-1')
    const budget = async () =>
      ((await (await get('/dashboard/api/devices/pump-1')).json()) as { usage: { budget: { dailyRequests: number } | null } }).usage.budget
    const configured = await budget()
    expect(configured?.dailyRequests).toBeGreaterThan(7)
    await control.limits.setDevice('pump-1', { ai: { dailyRequests: 7 } }, 'operator:test')
    expect(await budget()).toEqual({ ...configured, dailyRequests: 7 })
  })
})
