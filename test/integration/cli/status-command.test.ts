import { createServer } from 'node:net'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { buildApi } from '../../../provisioning/api/build-api.ts'
import { serveApi } from '../../../provisioning/api/serve-api.ts'
import { healthTarget, fetchHealth } from '../../../provisioning/health/health-client.ts'
import { createHealth } from '../../../provisioning/health/health.ts'
import { initControlPlane, loadServerTls, openControlPlane } from '../../../provisioning/index.ts'
import { runCli, spawnCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

const log = pino({ level: 'silent' })

/** A running Gatehouse with one active and one disabled device. */
async function running() {
  const dataDir = join(tempDir(), 'data')
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log })
  onTestFinished(() => gatehouse.close())
  await gatehouse.control.authority.createDevice({ id: 'pump-1' }, 'operator:test')
  await gatehouse.control.authority.createDevice({ id: 'pump-2' }, 'operator:test')
  await gatehouse.control.authority.disableDevice('pump-2', 'operator:test')
  // the set-up above ran in this process, synchronous parts included (keys, certificates, first schema compiles):
  // liveness rightly counts them; wait for a look whose window holds none of it (each look restarts the window)
  await waitFor(async () => (await fetch(`${gatehouse.http.url}/healthz`)).status === 200, 15_000, '/healthz 200 after the set-up', 100)
  // as its own process, as an operator runs it: run in this process, the command's own start-up work would block the
  // event loop of the Gatehouse it checks, which /healthz then rightly reports (it did, on a loaded box)
  const status = (...extra: string[]) =>
    spawnCli(['status', '--data-dir', dataDir, '--http-port', String(gatehouse.http.port), ...extra], {
      env: { GATEHOUSE_LOG_LEVEL: 'silent' },
    })
  return { dataDir, gatehouse, status }
}

/** A port nothing listens on (bound once, then freed). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('gatehouse status', () => {
  it('reports a running Gatehouse as ready, with every check and the device counts (--json), exit 0', async () => {
    const { gatehouse, status } = await running()
    const res = await status('--json')
    expect(res.code, res.stderr).toBe(0)
    expect(JSON.parse(res.stdout)).toEqual({
      url: gatehouse.http.url,
      running: true,
      ready: true,
      liveness: { status: 'ok', checks: { eventLoop: { status: 'ok' } } },
      readiness: {
        status: 'ok',
        checks: { database: { status: 'ok' }, ca: { status: 'ok' }, mqtt: { status: 'ok' }, changeFeed: { status: 'ok' } },
      },
      devices: { active: 1, disabled: 1, revoked: 0 },
    })
  })

  it('prints a table at a glance, and names the failed check with exit 1 when not ready', async () => {
    const { gatehouse, status } = await running()
    const ready = await status()
    expect(ready.code, ready.stderr).toBe(0)
    expect(ready.stdout).toContain(`Gatehouse on ${gatehouse.http.url}: ready\n`)
    expect(ready.stdout).toMatch(/changeFeed +ok/)
    expect(ready.stdout).toContain('devices: 1 active, 1 disabled, 0 revoked')
    gatehouse.feed.stop()
    // the running Gatehouse reuses a report for up to 1 s
    const res = await waitFor(async () => ((await status()).code === 1 ? status() : null), 5000, 'status exit 1', 100)
    expect(res.code).toBe(1)
    expect(res.stdout).toContain(': NOT READY')
    expect(res.stdout).toMatch(/changeFeed +failed +GH_HEALTH_FEED_STALLED: the change feed is stopped/)
    expect(res.stderr).toContain('error GH_STATUS_NOT_READY')
    expect(res.stderr).toContain('changeFeed')
  })

  it('says nothing is running, with exit 2, and still counts the devices of the data directory', async () => {
    const dataDir = join(tempDir(), 'data')
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    const created = await runCli(['device', 'create', 'pump-1', '--out', join(dataDir, '..', 'out'), '--data-dir', dataDir])
    expect(created.code, created.stderr).toBe(0)
    const port = await freePort()
    const res = await runCli(['status', '--data-dir', dataDir, '--http-port', String(port), '--json'])
    expect(res.code).toBe(2)
    expect(JSON.parse(res.stderr)).toMatchObject({ code: 'GH_STATUS_NOT_RUNNING' }) // --json: the error is JSON too
    expect(JSON.parse(res.stdout)).toEqual({
      url: `http://127.0.0.1:${port}`,
      running: false,
      devices: { active: 1, disabled: 0, revoked: 0 },
    })
    const text = await runCli(['status', '--data-dir', join(tempDir(), 'empty'), '--http-port', String(port)])
    expect(text.code).toBe(2)
    expect(text.stdout).toBe(`Gatehouse on http://127.0.0.1:${port}: not running\ndevices: no registry in the data directory\n`)
  })

  it('asks over HTTPS, trusting the data directory CA, when the API is not on loopback or httpTls is set', async () => {
    const dataDir = join(tempDir(), 'data')
    await initControlPlane(dataDir, {}, { log }, 'operator:test')
    const control = await openControlPlane(dataDir, {}, { log })
    onTestFinished(() => control.close())
    const tls = await loadServerTls(dataDir)
    const health = createHealth({ liveness: {}, readiness: {} }, { log })
    const app = buildApi(
      { ...control, presence: { isConnected: () => false, lastSeen: async () => null }, clock: { now: () => new Date() }, log, health },
      { https: { key: tls.key, cert: tls.cert } },
    )
    const served = await serveApi(app, { host: '127.0.0.1', port: 0 }) // (a test binds loopback only)
    onTestFinished(() => served.close())
    // `start --http-host 0.0.0.0` serves HTTPS; status reaches it on loopback, trusting data/ca/ca.pem
    const target = healthTarget({ dataDir, httpHost: '0.0.0.0', httpPort: served.port })
    expect(target.url).toBe(`https://127.0.0.1:${served.port}`)
    expect(target.ca).toBe(tls.ca)
    expect(await fetchHealth(target)).toEqual({ liveness: { status: 'ok', checks: {} }, readiness: { status: 'ok', checks: {} } })
    await expect(fetchHealth({ url: target.url })).rejects.toMatchObject({ code: 'GH_STATUS_UNREACHABLE' }) // not trusting it
    // httpTls: HTTPS on loopback too, and status follows it
    const onLoopback = healthTarget({ dataDir, httpHost: '127.0.0.1', httpPort: served.port, httpTls: true })
    expect(onLoopback).toEqual(target)
    expect(await fetchHealth(onLoopback)).toEqual({ liveness: { status: 'ok', checks: {} }, readiness: { status: 'ok', checks: {} } })
    expect(healthTarget({ dataDir, httpHost: '127.0.0.1', httpPort: served.port }).url).toBe(`http://127.0.0.1:${served.port}`)
  })
})
