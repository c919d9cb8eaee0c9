import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { authorityOptions, loadConfig } from '../../config.ts'
import { startGatehouse } from '../../gatehouse.ts'
import { openControlPlane } from '../../provisioning/index.ts'
import type { DeviceCredentials } from '../helpers/broker-pki.ts'
import { connectDevice } from '../helpers/mqtt-clients.ts'
import { runCli, spawnCli } from '../helpers/run-cli.ts'
import { tempDir } from '../helpers/temp-dir.ts'

const log = pino({ level: 'silent' })

/** Gatehouse on a data directory, and a second control plane on it playing the operator's process. */
async function running(dataDir: string) {
  const config = loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {})
  const gatehouse = await startGatehouse(config, { log })
  onTestFinished(() => gatehouse.close())
  const operator = await openControlPlane(dataDir, authorityOptions(config), { log })
  onTestFinished(() => operator.close())
  return { gatehouse, operator, port: gatehouse.mqtt.port }
}

async function provision(operator: Awaited<ReturnType<typeof running>>['operator'], id: string, tier: string): Promise<DeviceCredentials> {
  const issued = await operator.authority.createDevice({ id, tier }, 'operator:test')
  return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
}

/**
 * Publishes QoS 0 telemetry every 50 ms (at most 60 times) until the broker closes the connection;
 * resolves with the ms from `since` to the close, or rejects if it stays open.
 */
async function throttledAfter(client: MqttClient, deviceId: string, since: number): Promise<number> {
  const closed = new Promise<number>((resolve) => client.once('close', () => resolve(performance.now() - since)))
  for (let i = 0; i < 60 && client.connected; i++) {
    client.publish(`devices/${deviceId}/telemetry`, '{"t":1}')
    const tick = await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 50))])
    if (tick !== null) return tick
  }
  return Promise.race([closed, Promise.reject(new Error(`${deviceId} was not throttled`))])
}

/** Sends `n` QoS 1 messages and waits for every PUBACK: the device stayed within its limits. */
async function publishAll(client: MqttClient, deviceId: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await client.publishAsync(`devices/${deviceId}/telemetry`, `{"i":${i}}`, { qos: 1 })
}

const SLOW = { broker: { publishRate: { ratePerSecond: 0.01, burst: 1 } } }

describe('per-tier and per-device limits, applied live', () => {
  it("changes a connected device's publish rate within a second of `gatehouse tier set` in another process, audited", async () => {
    const dataDir = join(tempDir(), 'data')
    const { operator, port } = await running(dataDir)
    const client = await connectDevice(port, await provision(operator, 'pump-1', 'standard'))
    onTestFinished(() => client.endAsync())
    await publishAll(client, 'pump-1', 5) // the global limits: 20/s, burst 100

    const set = await spawnCli([
      'tier',
      'set',
      'standard',
      'broker.publishRate.ratePerSecond=0.01',
      'broker.publishRate.burst=1',
      '--data-dir',
      dataDir,
    ])
    expect(set.code, set.stderr).toBe(0)
    expect(await throttledAfter(client, 'pump-1', performance.now())).toBeLessThan(1000)

    const audit = JSON.parse((await runCli(['audit', '--device', 'pump-1', '--json', '--data-dir', dataDir])).stdout) as {
      action: string
      details: Record<string, unknown>
    }[]
    expect(audit.find((a) => a.action === 'device.throttled')?.details).toMatchObject({ limit: 'messages', ratePerSecond: 0.01, burst: 1 })
    const tiers = JSON.parse((await runCli(['tier', 'list', '--json', '--data-dir', dataDir])).stdout) as { items: unknown[] }
    expect(tiers.items).toContainEqual(expect.objectContaining({ tier: 'standard', limits: { ...SLOW, ai: {} } }))
  })

  it('applies API changes within a second, lets an override beat the tier, refuses bad values storing nothing, and keeps them over a restart', async () => {
    const dataDir = join(tempDir(), 'data')
    const first = await running(dataDir)
    const { token } = await first.operator.apiKeys.create({ name: 'ops', scopes: ['tiers:write', 'devices:read'] }, 'operator:test')
    const api = (method: string, path: string, body?: unknown) =>
      fetch(`${first.gatehouse.http.url}/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      })
    expect((await api('PUT', '/tiers/premium', SLOW)).status).toBe(200)
    const fastOwn = { broker: { publishRate: { ratePerSecond: 1000, burst: 1000 } } }
    const fast = await provision(first.operator, 'fast-1', 'premium')
    const slow = await provision(first.operator, 'slow-1', 'premium')
    expect((await api('PUT', '/devices/fast-1/limits', fastOwn)).status).toBe(200)

    // bad values: refused with a code, nothing stored
    const outOfRange = await api('PUT', '/tiers/premium', { broker: { publishRate: { burst: 0 } } })
    expect([outOfRange.status, ((await outOfRange.json()) as { code: string }).code]).toEqual([400, 'GH_API_VALIDATION'])
    const tooSmall = await api('PUT', '/tiers/premium', { broker: { publishBytesRate: { burst: 10 } } })
    expect([tooSmall.status, ((await tooSmall.json()) as { code: string }).code]).toEqual([400, 'GH_LIMITS_INVALID'])
    const unknown = await api('PUT', '/tiers/gold', SLOW)
    expect([unknown.status, ((await unknown.json()) as { code: string }).code]).toEqual([404, 'GH_TIER_UNKNOWN'])
    const tiers = (await (await api('GET', '/tiers')).json()) as { items: { tier: string; limits: unknown }[] }
    expect(tiers.items.map((t) => t.tier)).toEqual(['premium', 'standard'])
    expect(tiers.items[0]?.limits).toEqual(SLOW)

    // the override beats the tier: 20 messages at once pass for fast-1; slow-1 is closed on its second
    const fastClient = await connectDevice(first.port, fast)
    onTestFinished(() => fastClient.endAsync())
    await publishAll(fastClient, 'fast-1', 20)
    const slowClient = await connectDevice(first.port, slow)
    expect(await throttledAfter(slowClient, 'slow-1', performance.now())).toBeLessThan(1000)

    // removing the override over the API puts fast-1 on its tier's rate within a second
    const cleared = await api('DELETE', '/devices/fast-1/limits')
    expect(((await cleared.json()) as { override: unknown }).override).toBeNull()
    expect(await throttledAfter(fastClient, 'fast-1', performance.now())).toBeLessThan(1000)

    // a restart keeps them: the tier's values apply at the next connect
    await first.gatehouse.close()
    await first.operator.close()
    const second = await running(dataDir)
    expect((await second.operator.limits.getTier('premium')).limits).toEqual(SLOW)
    const again = await connectDevice(second.port, slow)
    expect(await throttledAfter(again, 'slow-1', performance.now())).toBeLessThan(1000)
  })

  it("applies a device's new tier announced by device.updated (as PATCH /v1/devices/{id} writes it) within a second", async () => {
    const dataDir = join(tempDir(), 'data')
    const { operator, port } = await running(dataDir)
    await operator.limits.setTier('premium', SLOW, 'operator:test')
    const client = await connectDevice(port, await provision(operator, 'move-1', 'standard'))
    onTestFinished(() => client.endAsync())
    await publishAll(client, 'move-1', 5) // standard: the global limits; premium's change did not touch it

    // the lifecycle slice's tier change: the row and its event in one transaction, from another connection
    const db = new Database(join(dataDir, 'gatehouse.db'))
    onTestFinished(() => void db.close())
    db.transaction(() => {
      db.prepare("UPDATE devices SET tier = 'premium' WHERE id = 'move-1'").run()
      db.prepare("INSERT INTO events (at, type, data) VALUES (?, 'device.updated', ?)").run(
        new Date().toISOString(),
        '{"deviceId":"move-1"}',
      )
    })()
    expect(await throttledAfter(client, 'move-1', performance.now())).toBeLessThan(1000)
  })
})
