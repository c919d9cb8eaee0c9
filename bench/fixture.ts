import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { cryptoRandom, systemClock } from '../certs/index.ts'
import type { DeviceBundle } from '../device-sim/index.ts'
import { dataDirLayout, initControlPlane, openControlPlane } from '../provisioning/index.ts'
import type { BrokerTlsFiles } from './brokers/launch.ts'

/**
 * One Gatehouse data dir per bench run, provisioned with Gatehouse's own authority: a fleet of devices
 * (fleet-0001 …), each with its own P-256 certificate and clientId = CN, plus a few probe devices
 * (probe-0001 …) for unloaded connects and subscribers. Every broker of the run (Gatehouse, plain aedes,
 * Mosquitto) serves with this data dir's server certificate and trusts its CA chain. Removed at exit.
 */
export interface BenchFixture extends BrokerTlsFiles {
  devices: DeviceBundle[]
  probes: DeviceBundle[]
  provisionSeconds: number
}

const PROBES = 16
let cached: Promise<BenchFixture> | null = null
let cachedCount = 0

export function benchFixture(minDevices: number): Promise<BenchFixture> {
  if (cached && cachedCount >= minDevices) return cached
  cachedCount = minDevices
  cached = provision(minDevices)
  return cached
}

async function provision(count: number): Promise<BenchFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const log = pino({ level: 'silent' })
  const started = performance.now()
  await initControlPlane(dataDir, {}, { log }, 'bench')
  const control = await openControlPlane(dataDir, {}, { log, clock: systemClock, random: cryptoRandom })
  const bundles = async (prefix: string, n: number): Promise<DeviceBundle[]> => {
    let last = 0
    const batch = await control.authority.prepareBatch({ count: n, prefix }, 'bench', (done, total) => {
      if (done - last >= 500 || done === total) {
        last = done
        process.stdout.write(`\rprovisioning ${prefix}*: ${done}/${total}`)
      }
    })
    await batch.commit()
    process.stdout.write('\n')
    return batch.issued.map((i) => {
      if (!i.privateKey) throw new Error(`no private key for ${i.deviceId}`)
      return { deviceId: i.deviceId, cert: i.certificatePem, key: i.privateKey.pem, ca: i.chainPem }
    })
  }
  try {
    const devices = await bundles('fleet-', count)
    const probes = await bundles('probe-', PROBES)
    const provisionSeconds = (performance.now() - started) / 1000
    console.log(`provisioned ${count + PROBES} devices in ${provisionSeconds.toFixed(1)} s (${dataDir})`)
    const layout = dataDirLayout(dataDir)
    return { dataDir, caFile: layout.chain, certFile: layout.serverCert, keyFile: layout.serverKey, devices, probes, provisionSeconds }
  } finally {
    await control.close()
  }
}
