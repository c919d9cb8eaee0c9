import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { identityFromCertificate, parseCertificatePem } from '../../../certs/index.ts'
import { readBundle, writeBundle } from '../../../device-sim/bundle-files.ts'
import type { SimEvent } from '../../../device-sim/device-types.ts'
import { claimDevice } from '../../../device-sim/enrollment.ts'
import { parseBrokerUrl } from '../../../device-sim/mqtt-session.ts'
import { renewalWindowOpens } from '../../../device-sim/renewer.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { waitFor } from '../../helpers/wait.ts'
import { createDevices, recordTelemetry, simGatehouse, startDevice } from './gatehouse-fixture.ts'

// docs/device-lifecycle.md from the device's side: claim provisioning and renewal over MQTT, end to end.

const DAY = 86_400_000

/**
 * A Gatehouse whose clock starts `ageDays` in the past (so its CA and the device's certificate were made
 * then) and then runs on today: the device's certificate is `ageDays` old.
 */
async function gatehouseWithAgedDevice(id: string, ageDays: number) {
  let offset = -ageDays * DAY
  const sim = await simGatehouse({}, { clock: { now: () => new Date(Date.now() + offset) } })
  const [bundle] = await createDevices(sim.gatehouse, [id])
  offset = 0
  return { ...sim, bundle: bundle! }
}

async function claimFolder(dataDir: string, out: string, args: string[] = []): Promise<{ cert: string; key: string; ca: string }> {
  const res = await runCli(['claim', 'create', '--group', 'pumps', '--out', out, '--data-dir', dataDir, ...args])
  expect(res.code, res.stderr).toBe(0)
  const [claimId] = readdirSync(out).filter((n) => !n.startsWith('.'))
  const read = (f: string) => readFileSync(join(out, claimId!, f), 'utf8')
  return { cert: read('cert.pem'), key: read('key.pem'), ca: read('ca.pem') }
}

describe('device-sim certificate renewal over MQTT', () => {
  it('renews by itself once its certificate is in the renewal window, switching without losing telemetry, and saves the new bundle', async () => {
    const { gatehouse, broker, dir, bundle } = await gatehouseWithAgedDevice('sim-0001', 250) // 365 days: its window opened on day 244
    expect(renewalWindowOpens(bundle.cert).getTime()).toBeLessThan(Date.now())
    const bundles = join(dir, 'devices')
    writeBundle(bundles, bundle)
    const telemetry = recordTelemetry(gatehouse)
    const events: SimEvent[] = []
    const device = startDevice(bundle, { broker, ratePerSecond: 50, bundlesDir: bundles }, events)

    await waitFor(
      () => device.stats().renewals === 1,
      15_000,
      () => `one renewal; have ${device.stats().renewals}`,
    )
    // the counter moves when the certificate is obtained; the switch to it (finish in-flight messages,
    // reconnect on the new bundle) follows
    await waitFor(() => device.currentBundle().cert !== bundle.cert, 10_000, 'the switch to the new bundle')
    await waitFor(() => device.stats().connected, 5000, 'the reconnect on the new bundle')
    const renewed = device.currentBundle()
    expect(renewed.key).not.toBe(bundle.key)
    const newIdentity = await identityFromCertificate(parseCertificatePem(renewed.cert))
    expect(events.find((e) => e.type === 'renewed')).toMatchObject({ serial: expect.any(String) })
    expect(renewalWindowOpens(renewed.cert).getTime()).toBeGreaterThan(Date.now() + 200 * DAY) // fresh: no renewal loop

    // the bundle folder holds the new certificate and key, key 0600
    expect(readBundle(bundles, 'sim-0001')).toEqual(renewed)
    expect(statSync(join(bundles, 'sim-0001', 'key.pem')).mode & 0o777).toBe(0o600)
    // the registry knows the new certificate, and the broker has the device on it
    expect((await gatehouse.control.store.listCertificates('sim-0001')).map((c) => c.serial)).toContain(newIdentity.serial)
    expect(gatehouse.broker.isConnected('sim-0001')).toBe(true)

    // nothing lost across the switch: every reading up to the last one sent arrived
    const sent = device.stats().sent
    await waitFor(() => new Set(telemetry.readings('sim-0001').map((r) => r.seq)).size >= sent, 5000, `${sent} distinct readings`)
    const got = [...new Set(telemetry.readings('sim-0001').map((r) => r.seq as number))].sort((a, b) => a - b)
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1))
    expect(device.stats()).toMatchObject({ errors: 0, reconnects: 0, dropped: 0 })
  })

  it("renews on the broker's renewal notice, not on its own idea of the window", async () => {
    const { gatehouse, broker, bundle } = await gatehouseWithAgedDevice('sim-0003', 250)
    // its own computation (the last 1 % of validity) would not renew for another 100 days
    expect(renewalWindowOpens(bundle.cert, 0.01).getTime()).toBeGreaterThan(Date.now() + 100 * DAY)
    const device = startDevice(bundle, { broker, ratePerSecond: 5, renewalWindow: 0.01 })
    await waitFor(
      () => device.stats().renewals === 1,
      15_000,
      () => `one renewal; have ${device.stats().renewals}`,
    )
    expect(await gatehouse.control.store.listCertificates('sim-0003')).toHaveLength(2)
  })

  it('tells a device on connect that its certificate is in the renewal window, with when it ends', async () => {
    const { broker, bundle } = await gatehouseWithAgedDevice('sim-0004', 250)
    const { port } = parseBrokerUrl(broker)
    const client = await connectDevice(port, { ...bundle, serial: '' })
    const notice = new Promise<Record<string, string>>((resolve) => client.on('message', (_t, p) => resolve(JSON.parse(p.toString()))))
    await client.subscribeAsync('devices/sim-0004/renewal/notice', { qos: 1 })
    const cert = parseCertificatePem(bundle.cert)
    const got = await notice
    expect(got).toEqual({
      serial: (await identityFromCertificate(cert)).serial,
      windowOpensAt: expect.any(String),
      windowEndsAt: cert.notAfter.toISOString(),
      notAfter: cert.notAfter.toISOString(),
    })
    // the server's renewalWindow (1/3 by default): day ~243 of 365, which is in the past
    expect(Math.abs(Date.parse(got.windowOpensAt!) - renewalWindowOpens(bundle.cert).getTime())).toBeLessThan(1000)
  })

  it('waits until renewAfter when Gatehouse answers GH_RENEWAL_TOO_EARLY', async () => {
    const { gatehouse, broker } = await simGatehouse()
    const [bundle] = await createDevices(gatehouse, ['sim-0002'])
    const device = startDevice(bundle!, { broker, ratePerSecond: 5, renew: false })
    expect(await device.whenConnected(5000)).toBe(true)
    const outcome = await device.renewNow()
    expect(outcome).toMatchObject({ ok: false, code: 'GH_RENEWAL_TOO_EARLY', retryAt: expect.any(String) })
    const retryAt = new Date((outcome as { retryAt: string }).retryAt).getTime()
    expect(Math.abs(retryAt - renewalWindowOpens(bundle!.cert).getTime())).toBeLessThan(5 * 60_000)
    expect(device.stats()).toMatchObject({ renewals: 0, errors: 0, connected: true })
    expect(device.currentBundle()).toBe(bundle)
  })
})

describe('device-sim provisioning by claim certificate', () => {
  it('claims a device over MQTT, connects as it, and is refused at CONNECT once the claim is used up', async () => {
    const { gatehouse, broker, dataDir, dir } = await simGatehouse()
    const claim = await claimFolder(dataDir, join(dir, 'claims'), ['--max-uses', '1'])
    const result = await claimDevice({ claim, broker: parseBrokerUrl(broker), deviceId: 'pump-0001' })
    expect(result.bundle).toMatchObject({
      deviceId: 'pump-0001',
      cert: expect.stringContaining('BEGIN CERTIFICATE'),
      key: expect.stringContaining('PRIVATE KEY'),
    })
    expect(parseCertificatePem(result.bundle.cert).subjectName.getField('CN')).toEqual(['pump-0001'])
    expect(await gatehouse.control.store.getDevice('pump-0001')).toMatchObject({ group: 'pumps', status: 'active' })

    const device = startDevice(result.bundle, { broker, ratePerSecond: 5 })
    expect(await device.whenConnected(5000)).toBe(true)
    expect(gatehouse.broker.isConnected('pump-0001')).toBe(true)

    // a used-up claim is refused at CONNECT (CONNACK 5, connect.refused reason claim-used-up)
    await expect(claimDevice({ claim, broker: parseBrokerUrl(broker), deviceId: 'pump-0002' })).rejects.toMatchObject({
      code: 'GH_SIM_CONNECT_FAILED',
    })
    expect((await gatehouse.control.store.listAudit({ action: 'connect.refused' }))[0]?.details).toMatchObject({ reason: 'claim-used-up' })
  })

  it('gatehouse sim --claim provisions each missing device by claim (with one-time tokens), saves its bundle, and runs it', async () => {
    const { gatehouse, broker, dataDir, dir } = await simGatehouse()
    const claims = join(dir, 'claims')
    const created = await runCli(['claim', 'create', '--group', 'pumps', '--tokens', '2', '--out', claims, '--data-dir', dataDir, '--json'])
    expect(created.code, created.stderr).toBe(0)
    const { path, tokens } = JSON.parse(created.stdout) as { path: string; tokens: string[] }
    expect(tokens).toHaveLength(2)
    const tokenFile = join(dir, 'tokens.txt')
    writeFileSync(tokenFile, `${tokens.join('\n')}\n`)
    const bundles = join(dir, 'devices')
    const res = await runCli([
      'sim',
      '--devices',
      '2',
      '--claim',
      path,
      '--tokens',
      tokenFile,
      '--prefix',
      'pump-',
      '--bundles',
      bundles,
      '--broker',
      broker,
      '--duration',
      '3s',
      '--json',
    ])
    expect(res.code, res.stderr).toBe(0)
    expect(JSON.parse(res.stdout)).toMatchObject({ devices: 2, everConnected: 2, errors: 0 })
    expect(readBundle(bundles, 'pump-0002')).not.toBeNull()
    expect(await gatehouse.control.store.getDevice('pump-0001')).toMatchObject({ group: 'pumps' })

    // the tokens are used up: a third device cannot be claimed with them
    const third = await runCli([
      'sim',
      '--devices',
      '3',
      '--claim',
      path,
      '--tokens',
      tokenFile,
      '--prefix',
      'pump-',
      '--bundles',
      bundles,
      '--broker',
      broker,
      '--duration',
      '1s',
    ])
    expect(third.code).toBe(1)
    expect(third.stderr).toMatch(/GH_SIM_CLAIM_UNREADABLE|GH_CLAIM_TOKEN_INVALID/)
  })
})
