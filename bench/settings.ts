import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pino from 'pino'
import { connectFleet, type DeviceBundle } from '../device-sim/index.ts'
import { initControlPlane, openControlPlane } from '../provisioning/index.ts'
import { median, percentile, printTable } from './table.ts'

const DEVICES = Number(process.env.BENCH_SETTINGS_DEVICES ?? 1000)
const PATCHES = Number(process.env.BENCH_SETTINGS_PATCHES ?? 200)
const GROUP_ROUNDS = Number(process.env.BENCH_REPS ?? 3)
const WAIT_MS = 10_000

/**
 * Settings delivery with DEVICES connected simulated devices, each subscribed to its settings topic:
 * - PATCH-to-device latency: an app PATCHes one device's settings over the HTTP API; time from sending
 *   the request to that device receiving the new version over MQTT (sequential, PATCHES of them);
 * - group change: one PATCH of the group's settings; time until every device has the new version.
 * Gatehouse runs as `gatehouse start` in its own process; the load generator is this process.
 */
export async function settingsBenchmark(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-settings-'))
  const dataDir = join(dir, 'data')
  const log = pino({ level: 'silent' })
  await initControlPlane(dataDir, {}, { log }, 'bench')
  const control = await openControlPlane(dataDir, {}, { log })
  const batch = await control.authority.prepareBatch({ count: DEVICES, prefix: 'set-', group: 'bench' }, 'bench')
  await batch.commit()
  const { token } = await control.apiKeys.create({ name: 'bench', scopes: ['settings:write'] }, 'bench')
  await control.close()
  const devices: DeviceBundle[] = batch.issued.map((i) => ({
    deviceId: i.deviceId,
    cert: i.certificatePem,
    key: i.privateKey!.pem,
    ca: i.chainPem,
  }))
  // the load generator connects every device from 127.0.0.1, and the API key must not be throttled
  writeFileSync(
    join(dataDir, 'gatehouse.json'),
    JSON.stringify({
      limits: { maxConnectionsPerIp: 50_000, connectionRatePerIp: { ratePerSecond: 100_000, burst: 100_000 } },
      httpRateLimit: { ratePerSecond: 100_000, burst: 100_000 },
    }),
  )

  const child = spawn(
    process.execPath,
    [
      resolve(import.meta.dirname, '../bin/gatehouse.js'),
      'start',
      '--data-dir',
      dataDir,
      '--mqtt-port',
      '0',
      '--http-port',
      '0',
      '--log-level',
      'warn',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  try {
    const { mqttPort, httpUrl } = await new Promise<{ mqttPort: number; httpUrl: string }>((ok, fail) => {
      let err = ''
      const timer = setTimeout(() => fail(new Error(`gatehouse start did not come up:\n${err}`)), 30_000)
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString()
        const m = /on 127\.0\.0\.1:(\d+); HTTP API on (http:\/\/[^;\s]+);/.exec(err)
        if (m) {
          clearTimeout(timer)
          ok({ mqttPort: Number(m[1]), httpUrl: m[2] as string })
        }
      })
      child.once('exit', (code) => fail(new Error(`gatehouse start exited ${code}:\n${err}`)))
    })

    const latest = new Map<string, number>()
    const waiters = new Map<string, { version: number; resolve: () => void }>()
    const fleet = await connectFleet(devices, { port: mqttPort, concurrency: 50 })
    if (fleet.connected.length !== DEVICES) throw new Error(`only ${fleet.connected.length}/${DEVICES} devices connected`)
    for (const { deviceId, client } of fleet.connected) {
      client.on('message', (_topic, payload) => {
        const version = (JSON.parse(payload.toString()) as { version: number }).version
        latest.set(deviceId, Math.max(version, latest.get(deviceId) ?? 0))
        const w = waiters.get(deviceId)
        if (w && version >= w.version) {
          waiters.delete(deviceId)
          w.resolve()
        }
      })
    }
    await Promise.all(fleet.connected.map(({ deviceId, client }) => client.subscribeAsync(`devices/${deviceId}/settings`, { qos: 1 })))
    const until = (deviceId: string, version: number) =>
      new Promise<void>((ok, fail) => {
        if ((latest.get(deviceId) ?? 0) >= version) return ok()
        const timer = setTimeout(() => fail(new Error(`${deviceId} did not get version ${version}`)), WAIT_MS)
        waiters.set(deviceId, { version, resolve: () => (clearTimeout(timer), ok()) })
      })
    await Promise.all(devices.map((d) => until(d.deviceId, 1)))

    const patch = async (path: string, body: unknown) => {
      const res = await fetch(`${httpUrl}${path}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify(body),
      })
      if (!res.ok) throw new Error(`PATCH ${path}: ${res.status} ${await res.text()}`)
      return (await res.json()) as { version?: number }
    }

    const patchLatencies: number[] = []
    for (let i = 0; i < PATCHES; i++) {
      const deviceId = devices[(i * 37) % DEVICES]!.deviceId
      const started = performance.now()
      const view = await patch(`/v1/devices/${deviceId}/settings`, { sequence: i })
      await until(deviceId, view.version!)
      patchLatencies.push(performance.now() - started)
    }

    const groupTimes: number[] = []
    for (let round = 1; round <= GROUP_ROUNDS; round++) {
      const target = new Map(devices.map((d) => [d.deviceId, (latest.get(d.deviceId) ?? 0) + 1]))
      const started = performance.now()
      await patch('/v1/groups/bench/settings', { round })
      await Promise.all(devices.map((d) => until(d.deviceId, target.get(d.deviceId)!)))
      groupTimes.push(performance.now() - started)
    }
    await fleet.close()

    const summary = {
      devices: DEVICES,
      patchToDeviceMs: {
        p50: round2(percentile(patchLatencies, 50)),
        p99: round2(percentile(patchLatencies, 99)),
        n: patchLatencies.length,
      },
      groupChangeToAllMs: { median: round2(median(groupTimes)), runs: groupTimes.map(round2) },
    }
    printTable([
      [`settings delivery, ${DEVICES} connected devices`, 'result', 'aim'],
      ['PATCH -> device, p50 (ms)', summary.patchToDeviceMs.p50, ''],
      ['PATCH -> device, p99 (ms)', summary.patchToDeviceMs.p99, '< 50'],
      [`group change -> all ${DEVICES}, median of ${GROUP_ROUNDS} (ms)`, summary.groupChangeToAllMs.median, '< 1000'],
    ])
    return summary
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100
