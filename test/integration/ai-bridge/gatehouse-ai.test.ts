import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

describe('the AI bridge in the running product (local analyzer, zero configuration but a window of 1)', () => {
  it("answers a device's telemetry with an insight on its insights topic, and the API shows it and its usage", async () => {
    const dataDir = join(tempDir(), 'data')
    const config = loadConfig({ dataDir, mqttPort: 0, httpPort: 0, ai: { windowing: { messages: 1 }, usageFlushSeconds: 0.2 } }, {})
    const gatehouse = await startGatehouse(config, { log: pino({ level: 'silent' }) })
    onTestFinished(() => gatehouse.close())
    const { control } = gatehouse
    const issued = await control.authority.createDevice({ id: 'boiler-1' }, 'operator:test')
    await control.settings.patchDevice('boiler-1', { thresholds: { temp: { max: 80 } } }, { actor: 'operator:test' })
    const device = await connectDevice(gatehouse.mqtt.port, {
      deviceId: 'boiler-1',
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    })
    const insights: Record<string, unknown>[] = []
    device.on('message', (topic, payload) => {
      if (topic === 'devices/boiler-1/insights') insights.push(JSON.parse(payload.toString()))
    })
    await device.subscribeAsync('devices/boiler-1/insights', { qos: 1 })
    await device.publishAsync('devices/boiler-1/telemetry', JSON.stringify({ temp: 85, owner: 'ops@example.com' }), { qos: 1 })
    await waitFor(() => insights.length > 0, 10_000, 'an insight')
    expect(insights[0]).toMatchObject({ type: 'insight', deviceId: 'boiler-1', provider: 'local' })
    expect(insights[0]!.anomalies).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'threshold', metric: 'temp' })]))

    const { token } = await control.apiKeys.create({ name: 'ai-dash', scopes: ['insights:read'] }, 'operator:test')
    const headers = { authorization: `Bearer ${token}` }
    const listed = (await (await fetch(`${gatehouse.http.url}/v1/devices/boiler-1/insights`, { headers })).json()) as {
      items: { id: string }[]
    }
    expect(listed.items.map((i) => i.id)).toEqual([insights[0]!.id])
    // the leased slice of the day's budget counts as used until the next flush (usageFlushSeconds) gives back the rest
    const usage = () => fetch(`${gatehouse.http.url}/v1/devices/boiler-1/usage?days=1`, { headers }).then((r) => r.json())
    await waitFor(async () => ((await usage()) as { total: { requests: number } }).total.requests === 1, 10_000, 'the usage flushed')
    expect(gatehouse.ai?.stats()).toMatchObject({ forwarded: 1 })
  })

  it('is not attached at all when aiEnabled is false', async () => {
    const config = loadConfig({ dataDir: join(tempDir(), 'data'), mqttPort: 0, httpPort: 0, aiEnabled: false }, {})
    const gatehouse = await startGatehouse(config, { log: pino({ level: 'silent' }) })
    onTestFinished(() => gatehouse.close())
    expect(gatehouse.ai).toBeUndefined()
  })

  it('refuses an invalid AI configuration at start, listing the problem', async () => {
    expect(() => loadConfig({ dataDir: join(tempDir(), 'data'), ai: { tiers: { standard: { provider: 'skynet' } } } }, {})).toThrow(
      expect.objectContaining({ code: 'GH_CONFIG_INVALID' }),
    )
  })
})
