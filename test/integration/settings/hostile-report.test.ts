import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

describe('a hostile settings report over MQTT', () => {
  it('{"$enc": ...}, __proto__ or an integer beyond 2^53 in devices/{id}/settings/reported is refused; GET /v1/devices, the device settings and `settings get` still answer', async () => {
    const dataDir = join(tempDir(), 'data')
    const recorder = createRecordingLogger('debug')
    const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log: recorder.log })
    onTestFinished(() => gatehouse.close())
    const control = gatehouse.control
    const issued = await control.authority.createDevice({ id: 'evil-1' }, 'operator:test')
    await control.settings.patchLayer({ kind: 'fleet' }, { wifi_secret: 'pw', rate: 5 }, { actor: 'operator:test' })
    const device = await connectDevice(gatehouse.mqtt.port, {
      deviceId: 'evil-1',
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    })
    onTestFinished(() => device.endAsync())

    const refused = () => recorder.records.filter((r) => r.msg === 'settings report refused' && r.deviceId === 'evil-1')
    for (const settings of ['{"wifi_secret": {"$enc": "v1:AAAA"}}', '{"__proto__": {"polluted": 1}}', '{"rate": 9007199254740993}']) {
      await device.publishAsync('devices/evil-1/settings/reported', `{"version": 1, "settings": ${settings}}`, { qos: 1 })
    }
    // a good report afterwards is stored: the marker that nothing else was taken from the bad ones
    await device.publishAsync(
      'devices/evil-1/settings/reported',
      JSON.stringify({ version: 1, settings: { wifi_secret: 'pw', rate: 5 } }),
      { qos: 1 },
    )
    await waitFor(async () => (await control.settings.getDevice('evil-1')).reported !== null, 5000, 'the good report')
    // all three were refused; the log says so once a minute per device and code (the second is suppressed);
    // the integer JSON.parse would round (to 9007199254740992) is named with its path
    expect(
      refused()
        .map((r) => r.code)
        .sort(),
    ).toEqual(['GH_JSON_INTEGER_UNSAFE', 'GH_SETTINGS_INVALID'])
    expect(refused().find((r) => r.code === 'GH_JSON_INTEGER_UNSAFE')?.err).toContain('9007199254740993 at settings.rate')

    const { token } = await control.apiKeys.create({ name: 'dash', scopes: ['devices:read', 'settings:read'] }, 'operator:test')
    const get = (path: string) => fetch(`${gatehouse.http.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    expect((await get('/v1/devices')).status).toBe(200)
    const view = await get('/v1/devices/evil-1/settings')
    expect(view.status).toBe(200)
    expect(((await view.json()) as { reported: { settings: unknown } }).reported.settings).toEqual({ wifi_secret: '[secret]', rate: 5 })
    const cli = await runCli(['settings', 'get', '--device', 'evil-1', '--json', '--data-dir', dataDir])
    expect(cli.code, cli.stderr).toBe(0)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
