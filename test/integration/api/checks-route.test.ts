import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const log = pino({ level: 'silent' })

/** A real Gatehouse on a temp data directory (no CA passphrase), its HTTP API on loopback. */
async function running(dataDir: string) {
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log })
  onTestFinished(() => gatehouse.close())
  const get = (path: string, token?: string) =>
    fetch(`${gatehouse.http.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  const key = async (...scopes: string[]) =>
    (
      await gatehouse.control.apiKeys.create(
        { name: `k-${scopes.join('-').replaceAll(':', '.')}`, scopes, expiresInMs: 86_400_000 },
        'operator:test',
      )
    ).token
  return { gatehouse, get, key }
}

describe('GET /v1/checks', () => {
  it('answers the fleet checks of the data directory to a key with checks:read, and 401/403 without', async () => {
    const { get, key } = await running(join(tempDir(), 'data'))
    const res = await get('/v1/checks', await key('checks:read'))
    expect(res.status).toBe(200)
    const report = (await res.json()) as {
      findings: { id: string; severity: string; objects: { count: number } }[]
      counts: Record<string, number>
    }
    // a data directory made without GATEHOUSE_CA_PASSPHRASE: the CA and server keys are in clear
    expect(report.findings).toEqual([
      expect.objectContaining({ id: 'ca-key-unencrypted', severity: 'high', objects: expect.objectContaining({ count: 3 }) }),
    ])
    expect(report.counts).toEqual({ info: 0, low: 0, medium: 0, high: 1, critical: 0 })
    expect(await (await get('/v1/checks', await key('devices:read'))).json()).toMatchObject({ status: 403, code: 'GH_API_KEY_SCOPE' })
    expect((await get('/v1/checks')).status).toBe(401)
    const bad = await get('/v1/checks?silentDays=0', await key('checks:read', 'devices:read'))
    expect(bad.status).toBe(400)
  })

  it("takes silentDays, and a device's lastSeen outlives a restart", async () => {
    const dataDir = join(tempDir(), 'data')
    const first = await running(dataDir)
    const issued = await first.gatehouse.control.authority.createDevice({ id: 'valve-1' }, 'operator:test')
    const creds = {
      deviceId: 'valve-1',
      cert: issued.certificatePem,
      key: issued.privateKey!.pem,
      ca: issued.chainPem,
      serial: issued.serial,
    }
    const before = Date.now()
    await (await connectDevice(first.gatehouse.mqtt.port, creds)).endAsync()
    await first.gatehouse.close()

    const second = await running(dataDir)
    const token = await second.key('devices:read', 'checks:read')
    const device = (await (await second.get('/v1/devices/valve-1', token)).json()) as { connected: boolean; lastSeen: string | null }
    expect(device.connected).toBe(false)
    expect(Date.parse(device.lastSeen ?? '')).toBeGreaterThanOrEqual(before) // read from the registry: this process never saw it
    const report = (await (await second.get('/v1/checks?silentDays=1', token)).json()) as { findings: { id: string }[] }
    expect(report.findings.map((f) => f.id)).not.toContain('device-silent')
  })
})
