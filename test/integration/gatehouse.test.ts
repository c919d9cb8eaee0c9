import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import mqtt from 'mqtt'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig, type ConfigInput } from '../../config.ts'
import { startGatehouse } from '../../gatehouse.ts'
import { openControlPlane } from '../../provisioning/index.ts'
import { attemptConnect, closedWithin, connectDevice, runMosquitto, readBundleCredentials } from '../helpers/mqtt-clients.ts'
import { startGatehouseProcess as startProcess } from '../helpers/gatehouse-process.ts'
import { runCli, spawnCli } from '../helpers/run-cli.ts'
import { tempDir } from '../helpers/temp-dir.ts'
import { createRecordingLogger } from '../helpers/broker-harness.ts'
import type { DeviceCredentials } from '../helpers/broker-pki.ts'

const bundle = readBundleCredentials

/** A TCP server on 127.0.0.1:port (0: ephemeral), closed when the test ends; rejects when the port is taken. */
async function listenOn(port: number): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return server
}

describe('gatehouse start (the whole product, as an operator runs it)', () => {
  it('initialises on first start, serves a provisioned device, cuts it off within 1 s of a revoke from another process, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const out = join(dir, 'devices')
    const gatehouse = await startProcess(dataDir)

    const created = await spawnCli(['device', 'create', 'pump-7', '--out', out, '--data-dir', dataDir])
    expect(created.code, created.stderr).toBe(0)
    const creds = bundle(out, 'pump-7')
    const client = await connectDevice(gatehouse.port, creds)
    await client.publishAsync('devices/pump-7/telemetry', JSON.stringify({ temperature: 21.5 }), { qos: 1 })

    const closed = closedWithin(client)
    const revoke = await spawnCli(['device', 'revoke', 'pump-7', '--data-dir', dataDir])
    const revokedAt = performance.now()
    expect(revoke.code, revoke.stderr).toBe(0)
    await closed
    expect(performance.now() - revokedAt).toBeLessThan(1000)

    const again = await attemptConnect(gatehouse.port, creds)
    expect(again.connack).toBe(5)
    const audit = JSON.parse((await runCli(['audit', '--device', 'pump-7', '--json', '--data-dir', dataDir])).stdout) as {
      action: string
      details: { reason?: string }
    }[]
    expect(audit.map((e) => e.action)).toEqual(
      expect.arrayContaining(['device.created', 'device.revoked', 'session.closed', 'connect.refused']),
    )
    expect(audit.find((e) => e.action === 'connect.refused')?.details.reason).toBe('revoked')

    // logs are JSON, and carry no key material
    expect(gatehouse.logs()).toMatch(/"msg":"device connected"|"deviceId":"pump-7"/)
    expect(gatehouse.logs()).not.toMatch(/PRIVATE KEY/)

    gatehouse.child.kill('SIGTERM')
    expect(await gatehouse.exited).toBe(0)
  })

  it('refuses to start with a wrong CA passphrase, and says why', async () => {
    const dataDir = join(tempDir(), 'data')
    expect((await runCli(['init', '--data-dir', dataDir], { GATEHOUSE_CA_PASSPHRASE: 'right' })).code).toBe(0)
    const res = await spawnCli(['start', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'], {
      env: { GATEHOUSE_CA_PASSPHRASE: 'wrong' },
    })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('error GH_CA_PASSPHRASE_WRONG')
  })

  it('refuses an invalid configuration, listing every problem, with exit 2', async () => {
    const res = await spawnCli(['start', '--data-dir', join(tempDir(), 'data'), '--mqtt-port', '70000'], {
      env: { GATEHOUSE_LIMITS_MAX_CONNECTIONS_PER_IP: '0' },
    })
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('error GH_CONFIG_INVALID')
    expect(res.stderr).toContain('mqttPort')
    expect(res.stderr).toContain('limits.maxConnectionsPerIp must be >= 1 (from GATEHOUSE_LIMITS_MAX_CONNECTIONS_PER_IP)')
  })
  it.each([
    ['GATEHOUSE_METRICS_PORT', { GATEHOUSE_METRICS_PORT: '0' }, []],
    ['--metrics-port', {}, ['--metrics-port', '0']],
  ])('serves /metrics without a key on the port %s names, and says where', async (_how, env, args) => {
    const gatehouse = await startProcess(join(tempDir(), 'data'), env, args)
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(gatehouse.stderr())?.[1]
    expect(url, gatehouse.stderr()).toBeDefined()
    const res = await fetch(url!)
    expect(res.status).toBe(200)
    expect(await res.text()).toMatch(/^gatehouse_build_info\{version="0\.1\.0",node="v\d+/m)
  })
})

describe('startGatehouse wiring (real SQLite registry, real broker)', () => {
  async function running(extra: ConfigInput = {}) {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const config = loadConfig({ dataDir, mqttPort: 0, httpPort: 0, ...extra }, {})
    const log = pino({ level: 'silent' })
    const gatehouse = await startGatehouse(config, { log })
    onTestFinished(() => gatehouse.close())
    // a second control plane on the same data directory plays the operator's CLI process
    const operator = await openControlPlane(dataDir, {}, { log })
    onTestFinished(() => operator.close())
    return { dir, dataDir, gatehouse, operator, port: gatehouse.mqtt.port }
  }

  it('closes what it started when starting fails half-way (the HTTP port is taken after the broker listens)', async () => {
    const blocker = await listenOn(0)
    const dataDir = join(tempDir(), 'data')
    const httpPort = (blocker.address() as { port: number }).port
    const { log, records } = createRecordingLogger('info')
    await expect(startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort }, {}), { log })).rejects.toMatchObject({ code: 'EADDRINUSE' })
    const listening = records.find((r) => r.msg === 'broker listening') as { port: number }
    expect(records.map((r) => r.msg)).toContain('broker closed')
    await listenOn(listening.port) // the MQTT port it had opened is free again
    const again = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log })
    await again.close()
  })

  async function provision(operator: Awaited<ReturnType<typeof running>>['operator'], id: string): Promise<DeviceCredentials> {
    const issued = await operator.authority.createDevice({ id }, 'operator:test')
    return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
  }

  it('disconnects a disabled device within 1 s, refuses it while disabled, and lets it back after enable', async () => {
    const { gatehouse, operator, port } = await running()
    const creds = await provision(operator, 'valve-1')
    const client = await connectDevice(port, creds)
    expect(gatehouse.broker.isConnected('valve-1')).toBe(true)
    const closed = closedWithin(client)
    await operator.authority.disableDevice('valve-1', 'operator:test')
    expect(await closed).toBeLessThan(1000)
    expect((await attemptConnect(port, creds)).connack).toBe(5)
    await operator.authority.enableDevice('valve-1', 'operator:test')
    expect((await attemptConnect(port, creds)).connack).toBe(0) // a connect sees every commit before it
  })

  // The change feed polls every 5 s here (the longest allowed), so these pass only if a CONNECT itself
  // sees what the other connection committed, however warm the broker's cache for the device is.
  it('refuses a warm device at once after another process revokes it, without waiting for the change feed', async () => {
    const { operator, port } = await running({ changeFeedIntervalMs: 5000 })
    const creds = await provision(operator, 'warm-1')
    const client = await connectDevice(port, creds) // the broker now holds warm-1's lookup in its cache
    await client.endAsync()
    await operator.authority.revokeDevice('warm-1', 'unspecified', 'operator:test')
    const again = await attemptConnect(port, creds)
    expect(again.connack).toBe(5)
    const audit = await operator.store.listAudit({ subject: 'warm-1' })
    expect(audit.find((e) => e.action === 'connect.refused')?.details).toMatchObject({ reason: 'revoked' })
  })

  it('accepts a device at once after another process enables it, though the broker had cached it as disabled', async () => {
    const { gatehouse, operator, port } = await running({ changeFeedIntervalMs: 5000 })
    const creds = await provision(operator, 'warm-2')
    await operator.authority.disableDevice('warm-2', 'operator:test')
    await gatehouse.feed.poll()
    expect((await attemptConnect(port, creds)).connack).toBe(5) // the broker now caches warm-2 as disabled
    await operator.authority.enableDevice('warm-2', 'operator:test')
    expect((await attemptConnect(port, creds)).connack).toBe(0)
  })

  it("refuses a renewed device's old certificate once the overlap is over, and accepts the new one", async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const config = loadConfig({ dataDir, mqttPort: 0, httpPort: 0, renewOverlapHours: 0 }, {})
    const log = pino({ level: 'silent' })
    const gatehouse = await startGatehouse(config, { log })
    onTestFinished(() => gatehouse.close())
    const operator = await openControlPlane(dataDir, { renewOverlapHours: 0 }, { log })
    onTestFinished(() => operator.close())
    const old = await provision(operator, 'meter-1')
    const renewed = await operator.authority.renewDevice('meter-1', {}, 'operator:test')
    expect((await attemptConnect(gatehouse.mqtt.port, old)).connack).toBe(5)
    const fresh = await connectDevice(gatehouse.mqtt.port, { ...old, cert: renewed.certificatePem, key: renewed.privateKey!.pem })
    expect(fresh.connected).toBe(true)
  })

  it('serves a device provisioned by the CLI to mosquitto_sub, which gets its settings document on subscribe', async () => {
    const { dataDir, dir, port } = await running()
    const out = join(dir, 'devices')
    expect((await runCli(['device', 'create', 'mosq-1', '--out', out, '--data-dir', dataDir])).code).toBe(0)
    expect((await runCli(['settings', 'set', '--device', 'mosq-1', 'interval=5', '--data-dir', dataDir])).code).toBe(0)
    const creds = bundle(out, 'mosq-1')
    const sub = runMosquitto('mosquitto_sub', port, creds, ['-t', 'devices/mosq-1/settings', '-q', '1', '-C', '1', '-W', '20'])
    const result = await sub.exited
    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ version: 2, settings: { interval: 5 } })
  })

  it('refuses a client with no certificate before MQTT', async () => {
    const { port, operator } = await running()
    const creds = await provision(operator, 'anon-1')
    const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, { ca: creds.ca, clientId: 'anon-1', reconnectPeriod: 0, connectTimeout: 5000 })
    onTestFinished(() => void client.end(true))
    const outcome = await new Promise<string>((resolve) => {
      client.once('connect', () => resolve('connected'))
      client.once('close', () => resolve('closed'))
      client.once('error', () => resolve('error'))
    })
    expect(outcome).not.toBe('connected')
  })
})
