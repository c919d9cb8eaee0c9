import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/** A real Gatehouse (temp data dir, MQTT and HTTP on port 0) and devices connected to it over mutual TLS. */
async function running() {
  const dataDir = join(tempDir(), 'data')
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log: pino({ level: 'silent' }) })
  onTestFinished(() => gatehouse.close())
  const { control } = gatehouse
  const connect = async (id: string, group: string, labels: Record<string, string>): Promise<MqttClient> => {
    const issued = await control.authority.createDevice({ id, group, labels }, 'operator:test')
    const creds: DeviceCredentials = {
      deviceId: id,
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    }
    return connectDevice(gatehouse.mqtt.port, creds)
  }
  const token = async (...scopes: string[]) =>
    (await control.apiKeys.create({ name: `k-${scopes.join('-').replace(':', '.')}`, scopes: scopes as never }, 'operator:test')).token
  const post = (auth: string, path: string, body: unknown) =>
    fetch(`${gatehouse.http.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  /** a QoS 1 publish answered with PUBACK: the device is still connected and served after whatever came before */
  const alive = (client: MqttClient, id: string) => client.publishAsync(`devices/${id}/telemetry`, '{"t":1}', { qos: 1 })
  return { gatehouse, control, connect, token, post, alive }
}

describe('bulk actions over the API, with devices connected', () => {
  it('a dry run changes nothing; a bulk revoke by label disconnects every selected connected device within a second', async () => {
    const { control, connect, token, post, alive } = await running()
    const selected = await Promise.all(['line-a-1', 'line-a-2', 'line-a-3'].map((id) => connect(id, 'plant', { line: 'a' })))
    const other = await connect('line-b-1', 'plant', { line: 'b' })
    const auth = await token('devices:revoke')
    const body = { selector: { group: 'plant', labels: { line: 'a' } }, max: 3, reason: 'keyCompromise' }

    const dry = await post(auth, '/v1/bulk/devices/revoke', { ...body, dryRun: true })
    expect(dry.status).toBe(200)
    expect(await dry.json()).toEqual({ action: 'revoke', dryRun: true, count: 3, deviceIds: ['line-a-1', 'line-a-2', 'line-a-3'] })
    await Promise.all(selected.map((c, i) => alive(c, `line-a-${i + 1}`)))
    expect(await control.authority.listDevices({ status: 'revoked' })).toEqual([])
    expect(await control.authority.listAudit({ action: 'device.revoked' })).toEqual([])

    const overMax = await post(auth, '/v1/bulk/devices/revoke', { ...body, max: 2 })
    expect(overMax.status).toBe(409)
    expect(await overMax.json()).toMatchObject({ code: 'GH_BULK_OVER_MAX' })
    expect(await control.authority.listDevices({ status: 'revoked' })).toEqual([])

    const closed = selected.map((c) => closedWithin(c))
    const res = await post(auth, '/v1/bulk/devices/revoke', body)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ action: 'revoke', dryRun: false, count: 3 })
    for (const ms of await Promise.all(closed)) expect(ms).toBeLessThan(1000)
    await alive(other, 'line-b-1') // the device outside the selector is still served after the others were cut off
    const audit = await control.authority.listAudit({ action: 'device.revoked' })
    expect(audit.map((e) => e.subject).sort()).toEqual(['line-a-1', 'line-a-2', 'line-a-3'])
    for (const e of audit) expect(e).toMatchObject({ actor: 'apikey:k-devices.revoke', details: { reason: 'keyCompromise', bulk: true } })
  })

  it('a bulk disable by group disconnects the selected devices; bulk enable lets them back', async () => {
    const { connect, token, post, alive } = await running()
    const a = await connect('pump-1', 'pumps', {})
    const b = await connect('valve-1', 'valves', {})
    const auth = await token('devices:write')
    const closed = closedWithin(a)
    const res = await post(auth, '/v1/bulk/devices/disable', { selector: { group: 'pumps' }, max: 10 })
    expect(await res.json()).toEqual({ action: 'disable', dryRun: false, count: 1, deviceIds: ['pump-1'] })
    expect(await closed).toBeLessThan(1000)
    await alive(b, 'valve-1')
    const enabled = await post(auth, '/v1/bulk/devices/enable', { selector: { group: 'pumps' }, max: 10 })
    expect(await enabled.json()).toMatchObject({ count: 1, deviceIds: ['pump-1'] })
    const again = await connect('pump-2', 'pumps', {})
    await alive(again, 'pump-2')
  })
})
