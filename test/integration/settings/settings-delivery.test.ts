import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { openControlPlane, type ControlPlane } from '../../../provisioning/index.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { connectDevice, rawTlsClient, runMosquitto } from '../../helpers/mqtt-clients.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

interface SettingsMessage {
  version: number
  settings: Record<string, unknown>
  updatedAt: string
}

async function world() {
  const dataDir = join(tempDir(), 'data')
  const recorder = createRecordingLogger('debug')
  const config = loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {})
  let gatehouse: Gatehouse = await startGatehouse(config, { log: recorder.log })
  onTestFinished(() => gatehouse.close())
  // the operator's or the API's process, on the same data directory
  const operator: ControlPlane = await openControlPlane(dataDir, {}, { log: recorder.log })
  onTestFinished(() => operator.close())
  return {
    dataDir,
    operator,
    logs: recorder.records,
    port: () => gatehouse.mqtt.port,
    httpUrl: () => gatehouse.http.url,
    gatehouse: () => gatehouse,
    async restart() {
      await gatehouse.close()
      gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: gatehouse.mqtt.port, httpPort: 0 }, {}), { log: recorder.log })
    },
    async provision(id: string, group?: string): Promise<DeviceCredentials> {
      const issued = await operator.authority.createDevice({ id, ...(group && { group }) }, 'operator:test')
      return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
    },
  }
}

/** A device that subscribes to its settings topic and keeps every document it receives. */
async function settingsListener(port: number, creds: DeviceCredentials, extra = {}) {
  const client = await connectDevice(port, creds, extra)
  const received: SettingsMessage[] = []
  client.on('message', (topic, payload) => {
    if (topic === `devices/${creds.deviceId}/settings`) received.push(JSON.parse(payload.toString()))
  })
  await client.subscribeAsync(`devices/${creds.deviceId}/settings`, { qos: 1 })
  return {
    client,
    received,
    /** resolves with the first document of at least this version, or rejects after timeoutMs */
    version(v: number, timeoutMs = 5000): Promise<SettingsMessage> {
      const got = () => `settings version ${v} for ${creds.deviceId}; got ${JSON.stringify(received.map((m) => m.version))}`
      return waitFor(() => received.find((m) => m.version >= v), timeoutMs, got)
    },
  }
}

describe('settings delivery over MQTT', () => {
  it('sends the current document on subscribe, and a change reaches the connected device within 1 s with the next version', async () => {
    const w = await world()
    const creds = await w.provision('pump-1')
    const device = await settingsListener(w.port(), creds)
    expect((await device.version(1)).settings).toEqual({})
    const started = performance.now()
    const view = await w.operator.settings.patchDevice('pump-1', { interval: 5 }, { actor: 'operator:test' })
    const got = await device.version(view.version)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(got).toMatchObject({ version: 2, settings: { interval: 5 } })
    expect(Date.parse(got.updatedAt)).not.toBeNaN()
  })

  it('delivers a PATCH made through the HTTP API to the connected device within 1 s, and a stale If-Match gets 412', async () => {
    const w = await world()
    const creds = await w.provision('api-1')
    const device = await settingsListener(w.port(), creds)
    await device.version(1)
    const { token } = await w
      .gatehouse()
      .control.apiKeys.create({ name: 'dashboard', scopes: ['settings:write', 'settings:read'] }, 'operator:test')
    const patch = (body: unknown, ifMatch: string) =>
      fetch(`${w.httpUrl()}/v1/devices/api-1/settings`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json', 'if-match': ifMatch },
        body: JSON.stringify(body),
      })
    const started = performance.now()
    const res = await patch({ interval: 15 }, '"1"')
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toBe('"2"')
    expect(await device.version(2)).toMatchObject({ settings: { interval: 15 } })
    expect(performance.now() - started).toBeLessThan(1000)
    const stale = await patch({ interval: 99 }, '"1"')
    expect(stale.status).toBe(412)
    expect(stale.headers.get('content-type')).toContain('application/problem+json')
    expect(((await stale.json()) as { code: string }).code).toBe('GH_SETTINGS_VERSION_MISMATCH')
    const unauthorized = await fetch(`${w.httpUrl()}/v1/devices/api-1/settings`)
    expect(unauthorized.status).toBe(401)
  })

  it('reaches a mosquitto_sub device too', async () => {
    const w = await world()
    const creds = await w.provision('mosq-1')
    await w.operator.settings.patchDevice('mosq-1', { mode: 'eco' }, { actor: 'operator:test' })
    const sub = runMosquitto('mosquitto_sub', w.port(), creds, ['-t', 'devices/mosq-1/settings', '-q', '1', '-W', '20'])
    let out = ''
    sub.child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    const docs = () =>
      out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SettingsMessage)
    await waitFor(() => docs().some((d) => d.version === 2), 10_000, 'version 2') // the current document, on subscribe
    expect(docs()[0]).toMatchObject({ version: 2, settings: { mode: 'eco' } })
    const started = performance.now()
    await w.operator.settings.patchDevice('mosq-1', { mode: 'boost' }, { actor: 'operator:test' })
    await waitFor(() => docs().some((d) => d.version === 3), 10_000, 'version 3')
    expect(performance.now() - started).toBeLessThan(1000)
    expect(docs().find((d) => d.version === 3)).toMatchObject({ settings: { mode: 'boost' } })
    sub.child.kill('SIGTERM')
  })

  it('gives a device that was offline during two changes the latest on reconnect, also after a broker restart', async () => {
    const w = await world()
    const creds = await w.provision('sleepy-1')
    const first = await settingsListener(w.port(), creds, { clean: true })
    await first.version(1)
    await first.client.endAsync()
    await w.operator.settings.patchDevice('sleepy-1', { interval: 10 }, { actor: 'operator:test' })
    await w.operator.settings.patchDevice('sleepy-1', { interval: 20 }, { actor: 'operator:test' })
    const back = await settingsListener(w.port(), creds)
    expect(await back.version(3)).toMatchObject({ version: 3, settings: { interval: 20 } })
    await back.client.endAsync()

    await w.restart()
    await w.operator.settings.patchDevice('sleepy-1', { interval: 30 }, { actor: 'operator:test' })
    const afterRestart = await settingsListener(w.port(), creds)
    expect(await afterRestart.version(4)).toMatchObject({ version: 4, settings: { interval: 30 } })
  })

  it('sends the document once per session and version, however often the device subscribes', async () => {
    const w = await world()
    const creds = await w.provision('loop-1')
    await w.operator.settings.patchDevice('loop-1', { blob: 'x'.repeat(52_000) }, { actor: 'operator:test' })
    const device = await settingsListener(w.port(), creds)
    await device.version(2)
    for (let i = 0; i < 100; i++) await device.client.subscribeAsync('devices/loop-1/settings', { qos: 1 })
    await w.operator.settings.patchDevice('loop-1', { mode: 'eco' }, { actor: 'operator:test' })
    await device.version(3) // the later marker: what the repeated SUBSCRIBEs sent would have arrived before it
    expect(device.received.map((m) => m.version)).toEqual([2, 3])
  })

  it('a clean=false device that never PUBACKs and loops on SUBSCRIBE holds one document in its session, not one per SUBSCRIBE', async () => {
    const w = await world()
    const creds = await w.provision('hog-1')
    await w.operator.settings.patchDevice('hog-1', { blob: 'x'.repeat(52_000) }, { actor: 'operator:test' })
    const connect = async () => {
      const { client } = await rawTlsClient(w.port(), creds)
      client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'hog-1', clean: false, keepalive: 60 })
      expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
      return client
    }
    const first = await connect()
    for (let i = 1; i <= 250; i++)
      first.send({ cmd: 'subscribe', messageId: i, subscriptions: [{ topic: 'devices/hog-1/settings', qos: 1 }] })
    const subacks = () => first.received.filter((p) => p.cmd === 'suback').length
    await waitFor(() => subacks() === 250 || first.isClosed(), 10_000, '250 SUBACKs')
    expect(subacks()).toBe(250) // within the default packet budget
    first.end()
    await first.closed

    const back = await connect() // session present: the broker replays what was never acknowledged
    await w.operator.settings.patchDevice('hog-1', { mode: 'eco' }, { actor: 'operator:test' })
    const versions = () =>
      back.received
        .filter((p) => p.cmd === 'publish')
        .map((p) => (JSON.parse((p as { payload: Buffer }).payload.toString()) as SettingsMessage).version)
    await waitFor(() => versions().includes(3), 10_000, 'version 3')
    expect(versions()).toEqual([2, 3])
    expect(w.gatehouse().broker.sessionStats().queuedMessages).toBeLessThanOrEqual(2)
  })

  it('catches up a clean=false device that resumes its session without subscribing again', async () => {
    const w = await world()
    const creds = await w.provision('nap-1')
    const first = await settingsListener(w.port(), creds, { clean: false, clientId: 'nap-1' })
    await first.version(1)
    await first.client.endAsync()
    await w.operator.settings.patchDevice('nap-1', { interval: 10 }, { actor: 'operator:test' })
    await waitFor(
      () => w.logs.some((r) => r.deviceId === 'nap-1' && String(r.msg).startsWith('settings changed while the device is away')),
      5000,
      'the change noted while away',
    )
    const back = await connectDevice(w.port(), creds, { clean: false, clientId: 'nap-1' })
    const got = await new Promise<SettingsMessage>((resolve) =>
      back.on(
        'message',
        (topic, payload) => topic === 'devices/nap-1/settings' && resolve(JSON.parse(payload.toString()) as SettingsMessage),
      ),
    )
    expect(got).toMatchObject({ version: 2, settings: { interval: 10 } })
  })

  it('sends a group change to every connected device of the group, and to no other', async () => {
    const w = await world()
    const members = await Promise.all(['line-a', 'line-b', 'line-c', 'line-d'].map((id) => w.provision(id, 'line')))
    const outsider = await w.provision('office-1', 'office')
    const listeners = await Promise.all(members.map((c) => settingsListener(w.port(), c)))
    const other = await settingsListener(w.port(), outsider)
    await Promise.all([...listeners, other].map((l) => l.version(1)))
    await w.operator.settings.patchLayer({ kind: 'group', group: 'line' }, { speed: 3 }, { actor: 'operator:test' })
    for (const l of listeners) expect((await l.version(2)).settings).toEqual({ speed: 3 })
    // the marker: a change of the outsider's own, made after the group's; the group's would have come first
    await w.operator.settings.patchDevice('office-1', { desk: 1 }, { actor: 'operator:test' })
    expect(await other.version(2)).toMatchObject({ settings: { desk: 1 } })
    expect(other.received.map((m) => m.version)).toEqual([1, 2])
  })

  it('stores a device report and shows it in sync', async () => {
    const w = await world()
    const creds = await w.provision('rep-1')
    const device = await settingsListener(w.port(), creds)
    const view = await w.operator.settings.patchDevice('rep-1', { interval: 7 }, { actor: 'operator:test' })
    const doc = await device.version(view.version)
    await device.client.publishAsync('devices/rep-1/settings/reported', JSON.stringify({ version: doc.version, settings: doc.settings }), {
      qos: 1,
    })
    await device.client.publishAsync('devices/rep-1/settings/reported', '{not json', { qos: 1 }) // ignored, connection stays
    await waitFor(async () => (await w.operator.settings.getDevice('rep-1')).inSync, 5000, 'rep-1 in sync')
    expect(await w.operator.settings.getDevice('rep-1')).toMatchObject({
      inSync: true,
      reported: { version: 2, settings: { interval: 7 } },
    })
    expect(device.client.connected).toBe(true)
  })

  it('delivers a secret in clear to its device only, and never writes it to the database files or the logs', async () => {
    const w = await world()
    const creds = await w.provision('vault-1')
    const device = await settingsListener(w.port(), creds)
    const secret = 'correct-horse-battery-staple-42'
    await w.operator.settings.patchDevice('vault-1', { wifi: { ssid: 'plant', psk_secret: secret } }, { actor: 'operator:test' })
    const doc = await device.version(2)
    expect(doc.settings).toEqual({ wifi: { ssid: 'plant', psk_secret: secret } })
    await device.client.publishAsync('devices/vault-1/settings/reported', JSON.stringify(doc), { qos: 1 })
    await waitFor(async () => (await w.operator.settings.getDevice('vault-1')).reported?.version === doc.version, 5000, 'the report stored')
    for (const file of readdirSync(w.dataDir).filter((f) => f.startsWith('gatehouse.db'))) {
      expect(readFileSync(join(w.dataDir, file)).includes(Buffer.from(secret)), file).toBe(false)
    }
    expect(JSON.stringify(w.logs)).not.toContain(secret)
    const listed = await runCli(['settings', 'get', '--device', 'vault-1', '--json', '--data-dir', w.dataDir])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).not.toContain(secret)
    expect(JSON.parse(listed.stdout).desired.wifi.psk_secret).toBe('[secret]')
    const audit = await runCli(['audit', '--json', '--data-dir', w.dataDir])
    expect(audit.stdout).not.toContain(secret)
  })
})

describe('gatehouse settings (CLI)', () => {
  it('sets, shows and unsets settings of a device, a group and the defaults', async () => {
    const dataDir = join(tempDir(), 'data')
    const cli = (args: string[]) => runCli([...args, '--data-dir', dataDir])
    expect((await cli(['init'])).code).toBe(0)
    expect((await cli(['device', 'create', 'c-1', '--group', 'g', '--out', join(dataDir, '..', 'devices')])).code).toBe(0)
    expect((await cli(['settings', 'set', '--defaults', 'interval=60', 'thresholds.max=30'])).code).toBe(0)
    expect((await cli(['settings', 'set', '--group', 'g', 'thresholds.max=40', 'label=pump room'])).code).toBe(0)
    const set = await cli(['settings', 'set', '--device', 'c-1', 'interval=5', '--json'])
    expect(set.code, set.stderr).toBe(0)
    expect(JSON.parse(set.stdout).desired).toEqual({ interval: 5, thresholds: { max: 40 }, label: 'pump room' })
    expect((await cli(['settings', 'unset', '--device', 'c-1', 'interval'])).code).toBe(0)
    const got = JSON.parse((await cli(['settings', 'get', '--device', 'c-1', '--json'])).stdout)
    expect(got).toMatchObject({ desired: { interval: 60 }, overrides: {} })
    const stale = await cli(['settings', 'set', '--device', 'c-1', 'interval=1', '--if-match', '1'])
    expect(stale.code).toBe(1)
    expect(stale.stderr).toContain('error GH_SETTINGS_VERSION_MISMATCH')
    expect((await cli(['settings', 'set', 'interval=1'])).code).toBe(2)
  })
})

void ({} as MqttClient)
