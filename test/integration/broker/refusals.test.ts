import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig, type ConfigInput } from '../../../config.ts'
import { createKeyAndCsr } from '../../../certs/index.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import type { AuditEntry } from '../../../provisioning/store/registry-store.ts'
import { createRecordingLogger } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { fixedClock, type FixedClock } from '../../helpers/clock.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/**
 * Issue 10, "Refusals must not fill the disk or the log": a real Gatehouse (SQLite in a temp dir, mutual
 * TLS on a loopback port 0) and mqtt.js clients. Bounds are asserted as counts and sizes.
 */
async function gatehouseWithLog(config: ConfigInput = {}, clock?: FixedClock) {
  const dir = tempDir()
  const { log, records } = createRecordingLogger('info')
  const limits = { connectionRatePerIp: { ratePerSecond: 1000, burst: 1000 }, maxConnectionsPerIp: 1000, ...(config.limits ?? {}) }
  const gatehouse = await startGatehouse(
    loadConfig({ dataDir: join(dir, 'data'), mqttPort: 0, httpPort: 0, aiEnabled: false, ...config, limits }, {}),
    { log, ...(clock && { clock }) },
  )
  onTestFinished(() => gatehouse.close())
  return { gatehouse, records, port: gatehouse.mqtt.port }
}

async function deviceCreds(gatehouse: Gatehouse, id: string): Promise<DeviceCredentials> {
  const issued = await gatehouse.control.authority.createDevice({ id, group: 'pumps' }, 'operator:test')
  return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey?.pem ?? '', ca: issued.chainPem, serial: issued.serial }
}

async function claimCreds(gatehouse: Gatehouse, req: { maxUses?: number } = {}): Promise<DeviceCredentials & { claimId: string }> {
  const created = await gatehouse.control.claims.create({ group: 'pumps', maxUses: req.maxUses ?? 5 }, 'operator:test')
  return {
    deviceId: `claim:${created.claim.id}`,
    claimId: created.claim.id,
    cert: created.certificatePem,
    key: created.privateKeyPem,
    ca: created.chainPem,
    serial: created.claim.serial,
  }
}

const audits = async (gatehouse: Gatehouse, action: string): Promise<AuditEntry[]> =>
  (await gatehouse.control.store.listAudit({})).filter((a) => a.action === action)
const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

describe('refused CONNECTs do not fill the database or the log', () => {
  it('writes at most one capped audit row and log line per subject, reason and address for 50 refused connects with 60 KB strings', async () => {
    // the per-device reconnect budget (CONNACK 3 after limits.connectRatePerClientId) is not under test here
    const { gatehouse, records, port } = await gatehouseWithLog({
      limits: { connectRatePerClientId: { ratePerSecond: 1000, burst: 1000 } },
    })
    const creds = await deviceCreds(gatehouse, 'pump-7')
    await gatehouse.control.authority.revokeDevice('pump-7', 'keyCompromise', 'operator:test')
    const huge = 'x'.repeat(60_000)
    const answers: (number | null)[] = []
    for (let i = 0; i < 25; i++) answers.push((await attemptConnect(port, creds, { clientId: huge })).connack)
    for (let i = 0; i < 25; i++) {
      answers.push(
        (await attemptConnect(port, creds, { will: { topic: `devices/pump-8/${huge}`, payload: Buffer.from('x'), qos: 0, retain: false } }))
          .connack,
      )
    }
    expect(answers).toEqual(Array(50).fill(5))

    const rows = await audits(gatehouse, 'connect.refused')
    expect(rows.map((r) => r.details.reason).sort()).toEqual(['client-id-mismatch', 'will-not-permitted'])
    for (const row of rows) expect(bytes(row)).toBeLessThan(1024)
    expect(rows.find((r) => r.details.reason === 'client-id-mismatch')?.details.clientId).toBe(`${'x'.repeat(128)}…[+59872 chars]`)
    const lines = records.filter((r) => r.msg === 'connect refused')
    expect(lines).toHaveLength(2)
    for (const line of lines) expect(bytes(line)).toBeLessThan(1024)

    // the next one after the interval carries the count of those suppressed (here: a restart of the window)
    expect(rows.every((r) => r.details.suppressed === 0)).toBe(true)
  })

  it('logs an MQTT 5 connect flood once per address, with the clientId capped', async () => {
    const { records, port, gatehouse } = await gatehouseWithLog()
    const creds = await deviceCreds(gatehouse, 'pump-7')
    for (let i = 0; i < 20; i++) {
      const r = await attemptConnect(port, creds, { protocolVersion: 5, clientId: 'y'.repeat(60_000) })
      expect(r.connack === null ? r.error : r.connack).toBeTruthy()
    }
    // a later positive marker: a good device connects after the flood
    const ok = await deviceCreds(gatehouse, 'pump-9')
    const client = await connectDevice(port, ok)
    expect(client.connected).toBe(true)
    const lines = records.filter((r) => r.reason === 'unsupported-protocol-version')
    expect(lines).toHaveLength(1)
    expect(bytes(lines[0])).toBeLessThan(1024)
  })
})

describe('refused publishes and subscribes', () => {
  it('store and log the topic of a refused publish or claim subscribe capped at 128 characters', async () => {
    const { gatehouse, port, records } = await gatehouseWithLog()
    const creds = await deviceCreds(gatehouse, 'pump-7')
    const device = await connectDevice(port, creds)
    const closed = closedWithin(device)
    device.publish(`devices/pump-8/${'t'.repeat(60_000)}`, 'x', { qos: 1 })
    await closed
    const claim = await claimCreds(gatehouse)
    const session = await connectDevice(port, claim, { clientId: 'claim:nonce-gggggggggggggggg', clean: true })
    await session.subscribeAsync(`provisioning/${'s'.repeat(60_000)}/response`, { qos: 1 }).catch(() => undefined)
    const rows = [...(await audits(gatehouse, 'publish.refused')), ...(await audits(gatehouse, 'subscribe.refused'))]
    expect(rows).toHaveLength(2)
    for (const row of rows) expect(bytes(row)).toBeLessThan(1024)
    const lines = records.filter((r) => r.msg === 'publish refused' || r.msg === 'subscribe refused')
    expect(lines).toHaveLength(2)
    for (const line of lines) expect(bytes(line)).toBeLessThan(1024)
  })
})

describe('session takeovers', () => {
  it('audit a device taking over its own session in a loop once per address per interval', async () => {
    const { gatehouse, port, records } = await gatehouseWithLog()
    const creds = await deviceCreds(gatehouse, 'pump-7')
    for (let i = 0; i < 20; i++) expect((await connectDevice(port, creds)).connected).toBe(true)
    expect(await audits(gatehouse, 'session.takeover')).toHaveLength(1)
    expect(records.filter((r) => r.msg === 'session taken over')).toHaveLength(1)
  })
})

describe('claim sessions', () => {
  it('share one publish budget per claim and address, whatever the nonce', async () => {
    const { gatehouse, port } = await gatehouseWithLog({ limits: { publishRate: { ratePerSecond: 0.001, burst: 3 } } })
    const claim = await claimCreds(gatehouse)
    const connectClaim = (nonce: string): Promise<MqttClient> => connectDevice(port, claim, { clientId: `claim:${nonce}`, clean: true })
    const first = await connectClaim('nonce-aaaaaaaaaaaaaaaa')
    for (let i = 0; i < 3; i++) await first.publishAsync('provisioning/nonce-aaaaaaaaaaaaaaaa/request', '{}', { qos: 1 })
    const firstClosed = closedWithin(first)
    first.publish('provisioning/nonce-aaaaaaaaaaaaaaaa/request', '{}', { qos: 1 })
    await firstClosed

    // a fresh nonce used to mean a fresh budget
    const second = await connectClaim('nonce-bbbbbbbbbbbbbbbb')
    const secondClosed = closedWithin(second)
    second.publish('provisioning/nonce-bbbbbbbbbbbbbbbb/request', '{}', { qos: 1 })
    await secondClosed
    const throttled = await audits(gatehouse, 'device.throttled')
    expect(throttled).toHaveLength(1)
    expect(throttled[0]).toMatchObject({ subject: `claim:${claim.claimId}` })
  })

  it.each([['revoked', async (g: Gatehouse, id: string) => void (await g.control.claims.revoke(id, 'operator:test'))]])(
    'refuses a %s claim at CONNECT with CONNACK 5, audited once per address',
    async (reason, spoil) => {
      const { gatehouse, port } = await gatehouseWithLog()
      const claim = await claimCreds(gatehouse)
      await spoil(gatehouse, claim.claimId)
      await waitFor(async () => (await audits(gatehouse, 'claim.revoked')).length === 1)
      const answers: (number | null)[] = []
      for (let i = 0; i < 5; i++)
        answers.push((await attemptConnect(port, claim, { clientId: `claim:nonce-${String(i).repeat(16)}`, clean: true })).connack)
      expect(answers).toEqual(Array(5).fill(5))
      const rows = await audits(gatehouse, 'connect.refused')
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({ subject: `claim:${claim.claimId}`, details: expect.objectContaining({ reason: `claim-${reason}` }) })
    },
  )

  it('refuses an expired claim at CONNECT (its certificate is still valid)', async () => {
    const clock = fixedClock(new Date())
    const { gatehouse, port } = await gatehouseWithLog({}, clock)
    const claim = await claimCreds(gatehouse)
    const before = await connectDevice(port, claim, { clientId: 'claim:nonce-eeeeeeeeeeeeeeee', clean: true })
    expect(before.connected).toBe(true)
    before.end(true)
    clock.advance('8d') // past the default 7-day expiry, inside the certificate's 30 days of grace
    expect((await attemptConnect(port, claim, { clientId: 'claim:nonce-ffffffffffffffff', clean: true })).connack).toBe(5)
    expect((await audits(gatehouse, 'connect.refused'))[0]?.details).toMatchObject({ reason: 'claim-expired' })
  })

  it('refuses a used-up claim at CONNECT', async () => {
    const { gatehouse, port } = await gatehouseWithLog()
    const claim = await claimCreds(gatehouse, { maxUses: 1 })
    const nonce = 'nonce-cccccccccccccccc'
    const session = await connectDevice(port, claim, { clientId: `claim:${nonce}`, clean: true })
    await session.subscribeAsync(`provisioning/${nonce}/response`, { qos: 1 })
    const answer = new Promise<Record<string, unknown>>((resolve) =>
      session.once('message', (_t, p: Buffer) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)),
    )
    const { csrPem } = await createKeyAndCsr({ commonName: 'pump-1' })
    await session.publishAsync(`provisioning/${nonce}/request`, JSON.stringify({ deviceId: 'pump-1', csr: csrPem }), { qos: 1 })
    expect(await answer).toMatchObject({ ok: true })
    session.end(true)
    const again = await attemptConnect(port, claim, { clientId: 'claim:nonce-dddddddddddddddd', clean: true })
    expect(again.connack).toBe(5)
    expect((await audits(gatehouse, 'connect.refused'))[0]?.details).toMatchObject({ reason: 'claim-used-up' })
  })
})
