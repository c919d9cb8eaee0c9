import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateKeyPair, publicKeySha256 } from '../../../certs/index.ts'
import { createCsrPem } from '../../../certs/create-csr.ts'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { openControlPlane } from '../../../provisioning/index.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice, requireMosquittoClients, runMosquitto } from '../../helpers/mqtt-clients.ts'
import { openssl, runCli, spawnCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

// Apps end to end (README "Apps: telemetry out"): `gatehouse app create` issues a certificate from the
// built-in CA, the running broker accepts it through the registry directory's lookupApp, and a revoke
// from another process cuts the app off within a second.

async function running() {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const log = pino({ level: 'silent' })
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false }, {}), { log })
  onTestFinished(() => gatehouse.close())
  // a second control plane on the same data directory plays the operator's CLI process
  const operator = await openControlPlane(dataDir, {}, { log })
  onTestFinished(() => operator.close())
  const device = async (id: string, group: string | null): Promise<MqttClient> => {
    const issued = await operator.authority.createDevice({ id, group }, 'operator:test')
    const creds = { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
    return connectDevice(gatehouse.mqtt.port, creds)
  }
  const cli = async (...args: string[]) => {
    const res = await runCli([...args, '--data-dir', dataDir])
    expect(res.code, res.stderr).toBe(0)
    return res.stdout
  }
  return { dir, dataDir, gatehouse, operator, port: gatehouse.mqtt.port, device, cli }
}

const appCreds = (bundle: string, name: string): DeviceCredentials => ({
  deviceId: `app:${name}`,
  cert: readFileSync(join(bundle, 'cert.pem'), 'utf8'),
  key: readFileSync(join(bundle, 'key.pem'), 'utf8'),
  ca: readFileSync(join(bundle, 'ca.pem'), 'utf8'),
  serial: '',
})

/** The QoS the broker granted for one filter (128: refused). */
function granted(client: MqttClient, topic: string): Promise<number | undefined> {
  return new Promise((resolve) =>
    client.subscribe(topic, { qos: 0 }, (err, grants) =>
      resolve(err ? (err as { packet?: { granted?: number[] } }).packet?.granted?.[0] : grants?.[0]?.qos),
    ),
  )
}

/** Collects what the app receives as `topic payload`. */
function received(client: MqttClient): string[] {
  const got: string[] = []
  client.on('message', (topic, payload) => got.push(`${topic} ${payload}`))
  return got
}

describe('gatehouse app: identities issued by operators, honoured by the broker', () => {
  it("an app of group pumps gets every pumps device's telemetry through a wildcard and nothing else, may not publish, and a revoke from another process cuts it off within 1 s", async () => {
    const { dir, dataDir, port, device, cli } = await running()
    const pump1 = await device('pump-1', 'pumps')
    const pump2 = await device('pump-2', 'pumps')
    const valve = await device('valve-1', 'valves')
    const out = join(dir, 'apps')
    const created = JSON.parse(await cli('app', 'create', 'dash', '--groups', 'pumps', '--classes', 'telemetry', '--out', out, '--json'))
    expect(created).toMatchObject({ name: 'dash', groups: ['pumps'], classes: ['telemetry'], status: 'active' })
    expect(statSync(join(out, 'dash', 'key.pem')).mode & 0o777).toBe(0o600)
    const creds = appCreds(join(out, 'dash'), 'dash')

    const app = await connectDevice(port, creds)
    const got = received(app)
    expect(await granted(app, 'devices/+/telemetry/#')).toBe(0)
    for (const outside of ['devices/#', 'devices/+/settings/reported', 'devices/pump-1/settings'])
      expect(await granted(app, outside), outside).toBe(128)
    await valve.publishAsync('devices/valve-1/telemetry', 'v1', { qos: 1 })
    await pump1.publishAsync('devices/pump-1/telemetry', 'p1', { qos: 1 })
    await pump2.publishAsync('devices/pump-2/telemetry/engine/rpm', 'p2', { qos: 1 })
    await valve.publishAsync('devices/valve-1/telemetry/flow', 'v2', { qos: 1 })
    // the marker comes after the valve's messages: had they been forwarded, they would be here by now
    await pump1.publishAsync('devices/pump-1/telemetry', 'marker', { qos: 1 })
    await waitFor(() => got.includes('devices/pump-1/telemetry marker'), 5000, 'the marker')
    expect(got.sort()).toEqual(['devices/pump-1/telemetry marker', 'devices/pump-1/telemetry p1', 'devices/pump-2/telemetry/engine/rpm p2'])

    // an app never publishes: a PUBLISH to a device topic closes it
    const publishClosed = closedWithin(app)
    app.publish('devices/pump-1/settings', '{}', { qos: 0 })
    await publishClosed

    const again = await connectDevice(port, creds)
    const closed = closedWithin(again)
    const revoke = await spawnCli(['app', 'revoke', 'dash', '--data-dir', dataDir])
    const revokedAt = performance.now()
    expect(revoke.code, revoke.stderr).toBe(0)
    await closed
    expect(performance.now() - revokedAt).toBeLessThan(1000)
    expect((await attemptConnect(port, creds)).connack).toBe(5)

    const audit = JSON.parse(await cli('audit', '--device', 'app:dash', '--json')) as { action: string; details: { reason?: string } }[]
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['app.created', 'publish.refused', 'app.revoked', 'connect.refused']))
    expect(audit.find((e) => e.action === 'connect.refused')?.details.reason).toBe('app-revoked')
    expect(JSON.parse(await cli('app', 'show', 'dash', '--json'))).toMatchObject({
      status: 'revoked',
      certificates: [{ status: 'revoked' }],
    })
  })

  it('a device moved to another group mid-session: within 1 s the app of its old group stops getting it and the app of its new group starts', async () => {
    const { dir, port, device, cli } = await running()
    const pump = await device('pump-1', 'pumps')
    const other = await device('pump-2', 'pumps')
    await cli('app', 'create', 'pumps-app', '--groups', 'pumps', '--classes', 'telemetry', '--out', join(dir, 'apps'))
    await cli('app', 'create', 'valves-app', '--groups', 'valves', '--classes', 'telemetry', '--out', join(dir, 'apps'))
    const pumpsApp = await connectDevice(port, appCreds(join(dir, 'apps', 'pumps-app'), 'pumps-app'))
    const valvesApp = await connectDevice(port, appCreds(join(dir, 'apps', 'valves-app'), 'valves-app'))
    const toPumps = received(pumpsApp)
    const toValves = received(valvesApp)
    await pumpsApp.subscribeAsync('devices/+/telemetry/#', { qos: 0 })
    await valvesApp.subscribeAsync('devices/+/telemetry/#', { qos: 0 })
    await pump.publishAsync('devices/pump-1/telemetry', 'before', { qos: 1 })
    await waitFor(() => toPumps.includes('devices/pump-1/telemetry before'), 5000, 'the pumps app gets pump-1 before the move')

    // `device update --group` in the operator's CLI (its own control plane on the data directory)
    await cli('device', 'update', 'pump-1', '--group', 'valves')
    const movedAt = performance.now()
    // publish until the valves app gets one (bounded): the live session follows the move
    for (let i = 0; i < 40 && !toValves.some((m) => m.startsWith('devices/pump-1/')); i++) {
      await pump.publishAsync('devices/pump-1/telemetry', `after-${i}`, { qos: 1 })
      await waitFor(() => toValves.some((m) => m.startsWith('devices/pump-1/')), 50, 'the valves app').catch(() => undefined)
    }
    expect(performance.now() - movedAt).toBeLessThan(1000)
    const firstToValves = toValves.find((m) => m.startsWith('devices/pump-1/'))!
    // from the first message the valves app got, nothing of pump-1 reaches the pumps app any more
    const before = toPumps.filter((m) => m.startsWith('devices/pump-1/'))
    expect(before).not.toContain(firstToValves)
    await pump.publishAsync('devices/pump-1/telemetry', 'moved', { qos: 1 })
    // the later positive marker: a pumps device's message after pump-1's, on the same app
    await other.publishAsync('devices/pump-2/telemetry', 'marker', { qos: 1 })
    await waitFor(() => toPumps.includes('devices/pump-2/telemetry marker'), 5000, 'the marker')
    await waitFor(() => toValves.includes('devices/pump-1/telemetry moved'), 5000, 'the valves app gets pump-1')
    expect(toPumps.filter((m) => m.startsWith('devices/pump-1/'))).toEqual(before)
    expect(toValves.filter((m) => !m.startsWith('devices/pump-1/'))).toEqual([])
  })

  it('a renewed certificate works; the old one is refused once revoked, and is on the CRL', async () => {
    const { dir, operator, port, device, cli } = await running()
    const pump = await device('pump-1', 'pumps')
    await cli('app', 'create', 'ops', '--all-groups', '--classes', 'telemetry,reported', '--out', join(dir, 'apps'))
    const old = appCreds(join(dir, 'apps', 'ops'), 'ops')
    const renewed = JSON.parse(await cli('app', 'renew', 'ops', '--out', join(dir, 'renewed'), '--json')) as { issuedSerial: string }
    const fresh = appCreds(join(dir, 'renewed', 'ops'), 'ops')
    const shown = JSON.parse(await cli('app', 'show', 'ops', '--json')) as { certificates: { serial: string; status: string }[] }
    expect(shown.certificates.map((c) => c.status)).toEqual(['active', 'active'])
    const oldSerial = shown.certificates.find((c) => c.serial !== renewed.issuedSerial)!.serial

    const app = await connectDevice(port, fresh)
    const got = received(app)
    await app.subscribeAsync('devices/+/settings/reported', { qos: 0 })
    await pump.publishAsync('devices/pump-1/settings/reported', '{"version":1,"settings":{}}', { qos: 1 })
    await waitFor(() => got.length === 1, 5000, 'the reported settings')
    expect((await attemptConnect(port, old)).connack).toBe(0) // both work until the old one is revoked

    // the serial as the operator copies it from `openssl x509 -noout -serial` (upper case, whole bytes), with
    // colons and a leading 00 byte: the registry's canonical form is what is revoked, sent and signed
    const printed = (await openssl(['x509', '-noout', '-serial'], old.cert)).stdout.trim().replace(/^serial=/, '')
    expect(printed.toLowerCase().replace(/^0+/, '')).toBe(oldSerial)
    const typed = `00:${printed.match(/../g)!.join(':')}`
    await cli('app', 'revoke', 'ops', '--serial', typed)
    expect((await attemptConnect(port, old)).connack).toBe(5)
    expect((await attemptConnect(port, fresh)).connack).toBe(0)
    const [crl] = await operator.authority.currentCrls()
    expect(crl?.entries).toBe(1)
    const listed = (await openssl(['crl', '-noout', '-text'], crl!.pem)).stdout
    expect(listed).toContain(`Serial Number: ${printed}`)
    const audit = JSON.parse(await cli('audit', '--device', 'app:ops', '--json')) as { action: string; details: { serials?: string[] } }[]
    expect(audit.find((e) => e.action === 'app.certificate.revoked')?.details.serials).toEqual([oldSerial])
  })

  it('`app revoke --serial` with something that is not a serial is GH_SERIAL_INVALID and revokes nothing', async () => {
    const { dir, dataDir, cli } = await running()
    await cli('app', 'create', 'ops', '--all-groups', '--classes', 'telemetry', '--out', join(dir, 'apps'))
    const res = await runCli(['app', 'revoke', 'ops', '--serial', 'not-a-serial', '--json', '--data-dir', dataDir])
    expect(res.code).not.toBe(0)
    expect(JSON.parse(res.stderr)).toMatchObject({ code: 'GH_SERIAL_INVALID' })
    const shown = JSON.parse(await cli('app', 'show', 'ops', '--json')) as { status: string; certificates: { status: string }[] }
    expect(shown).toMatchObject({ status: 'active', certificates: [{ status: 'active' }] })
  })

  it('`app revoke --serial` closes only a session on that certificate: the app connected with its other one stays, until that one is revoked', async () => {
    const { dir, port, device, cli } = await running()
    const pump = await device('pump-1', 'pumps')
    await cli('app', 'create', 'ops', '--groups', 'pumps', '--classes', 'telemetry', '--out', join(dir, 'apps'))
    const old = appCreds(join(dir, 'apps', 'ops'), 'ops')
    const { issuedSerial } = JSON.parse(await cli('app', 'renew', 'ops', '--out', join(dir, 'renewed'), '--json')) as {
      issuedSerial: string
    }
    const shown = JSON.parse(await cli('app', 'show', 'ops', '--json')) as { certificates: { serial: string }[] }
    const oldSerial = shown.certificates.find((c) => c.serial !== issuedSerial)!.serial

    const app = await connectDevice(port, appCreds(join(dir, 'renewed', 'ops'), 'ops'))
    const got = received(app)
    await app.subscribeAsync('devices/+/telemetry', { qos: 0 })
    let closed = false
    app.on('close', () => (closed = true))
    await cli('app', 'revoke', 'ops', '--serial', oldSerial)
    // a CONNECT catches the broker up on every committed event first: app.revoked has been handled by now
    expect((await attemptConnect(port, old)).connack).toBe(5)
    await pump.publishAsync('devices/pump-1/telemetry', 'after', { qos: 1 })
    await waitFor(() => got.includes('devices/pump-1/telemetry after'), 5000, 'a message after the old certificate was revoked')
    expect(closed).toBe(false)

    const cutOff = closedWithin(app)
    await cli('app', 'revoke', 'ops', '--serial', issuedSerial)
    expect(await cutOff).toBeLessThan(1000)
    const audit = JSON.parse(await cli('audit', '--device', 'app:ops', '--json')) as { action: string; details: { serial?: string } }[]
    expect(audit.filter((e) => e.action === 'session.closed').map((e) => e.details.serial)).toEqual([issuedSerial])
  })

  it('mosquitto_sub with the bundle `app create` writes receives the telemetry of its group', async () => {
    requireMosquittoClients()
    const { dir, port, device, cli } = await running()
    const pump = await device('pump-9', 'pumps')
    await cli('app', 'create', 'mosq', '--groups', 'pumps', '--classes', 'telemetry', '--out', join(dir, 'apps'))
    const sub = runMosquitto('mosquitto_sub', port, appCreds(join(dir, 'apps', 'mosq'), 'mosq'), [
      '-t',
      'devices/+/telemetry/#',
      '-v',
      '-C',
      '1',
      '-W',
      '20',
    ])
    let result: { code: number | null; stdout: string } | undefined
    void sub.exited.then((r) => (result = r))
    // mosquitto_sub says nothing when subscribed: publish until the first message reaches it (bounded)
    for (let i = 0; i < 100 && result === undefined; i++) {
      await pump.publishAsync('devices/pump-9/telemetry', `{"n":${i}}`, { qos: 1 })
      await waitFor(() => result !== undefined, 200, 'mosquitto_sub').catch(() => undefined)
    }
    expect(result?.code).toBe(0)
    expect(result?.stdout).toMatch(/^devices\/pump-9\/telemetry \{"n":\d+\}/)
  })

  it('refuses bad names, groups, classes, a key already in use and more apps than apps.maxApps, storing nothing', async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    await runCli(['init', '--data-dir', dataDir])
    const cli = (...args: string[]) =>
      runCli([...args, ...(args[1] === 'create' ? ['--out', join(dir, 'apps')] : []), '--data-dir', dataDir], {
        GATEHOUSE_APPS_MAX_APPS: '1',
      })
    const refused = async (code: string, ...args: string[]) => {
      const res = await cli(...args)
      expect(res.code, res.stdout).toBe(1)
      expect(res.stderr).toContain(code)
    }
    await refused('GH_APP_NAME_INVALID', 'app', 'create', 'Bad_Name', '--all-groups', '--classes', 'telemetry')
    await refused('GH_APP_OPTIONS_INVALID', 'app', 'create', 'dash', '--groups', 'pumps/x', '--classes', 'telemetry')
    await refused('GH_APP_OPTIONS_INVALID', 'app', 'create', 'dash', '--classes', 'telemetry')
    await refused('GH_APP_OPTIONS_INVALID', 'app', 'create', 'dash', '--all-groups', '--classes', 'settings')
    expect((await cli('app', 'create', 'dash', '--all-groups', '--groups', 'pumps', '--classes', 'telemetry')).code).toBe(2)

    // from a CSR: the key never leaves the app; a device's key is refused
    const log = pino({ level: 'silent' })
    const operator = await openControlPlane(dataDir, {}, { log })
    onTestFinished(() => operator.close())
    const keys = await generateKeyPair('p256')
    const csrFile = join(dir, 'app.csr')
    writeFileSync(csrFile, await createCsrPem({ commonName: 'app:dash', keys }))
    const deviceCsr = join(dir, 'device.csr')
    writeFileSync(deviceCsr, await createCsrPem({ commonName: 'pump-1', keys }))
    const device = await operator.authority.createDevice({ id: 'pump-1', csr: readFileSync(deviceCsr, 'utf8') }, 'operator:test')
    await refused('GH_CSR_KEY_IN_USE', 'app', 'create', 'dash', '--all-groups', '--classes', 'telemetry', '--csr', csrFile)
    await refused('GH_CSR_CN_MISMATCH', 'app', 'create', 'other', '--all-groups', '--classes', 'telemetry', '--csr', csrFile)
    expect(JSON.parse((await cli('app', 'list', '--json')).stdout)).toEqual({ items: [] })

    const fresh = await generateKeyPair('p256')
    writeFileSync(csrFile, await createCsrPem({ commonName: 'app:dash', keys: fresh }))
    const fromCsr = await cli('app', 'create', 'dash', '--all-groups', '--classes', 'telemetry', '--csr', csrFile)
    expect(fromCsr.code, fromCsr.stderr).toBe(0)
    const cert = readFileSync(join(dir, 'apps', 'dash', 'cert.pem'), 'utf8')
    expect(publicKeySha256(cert)).not.toBe(device.keySha256)
    expect(() => statSync(join(dir, 'apps', 'dash', 'key.pem'))).toThrow()
    await refused('GH_APP_EXISTS', 'app', 'create', 'dash', '--all-groups', '--classes', 'telemetry')
    await refused('GH_APP_LIMIT', 'app', 'create', 'dash-2', '--all-groups', '--classes', 'telemetry')
    await refused('GH_APP_NOT_FOUND', 'app', 'revoke', 'nope')
  })
})
