import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { describe, expect, it, onTestFinished } from 'vitest'
import { normalizeSerial } from '../../certs/index.ts'
import { loadConfig } from '../../config.ts'
import { startGatehouse } from '../../gatehouse.ts'
import { createRecordingLogger } from '../helpers/broker-harness.ts'
import { connectDevice, readBundleCredentials } from '../helpers/mqtt-clients.ts'
import { runCli } from '../helpers/run-cli.ts'
import { tempDir } from '../helpers/temp-dir.ts'
import { waitFor } from '../helpers/wait.ts'

const bundle = readBundleCredentials

/** The serial of the certificate the broker presented on a connected mqtt.js client. */
function serverSerial(client: { stream: unknown }): string {
  return normalizeSerial((client.stream as TLSSocket).getPeerCertificate().serialNumber)
}

describe('CA rotation while Gatehouse runs', () => {
  it("accepts a device of the new issuing CA within seconds of `ca rotate` from another process, keeps the old device's session up and lets it connect again", async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const out = join(dir, 'devices')
    const { log, records } = createRecordingLogger('info')
    const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log })
    onTestFinished(() => gatehouse.close())
    const port = gatehouse.mqtt.port
    const cli = async (args: string[]) => {
      const res = await runCli([...args, '--data-dir', dataDir])
      expect(res.code, res.stderr).toBe(0)
      return res.stdout
    }

    // device A: issued by the first issuing CA; its bundle trusts that CA and the root only
    await cli(['device', 'create', 'dev-a', '--out', out])
    const a = bundle(out, 'dev-a')
    expect(a.ca.match(/BEGIN CERTIFICATE/g)).toHaveLength(2)
    const live = await connectDevice(port, a)
    const oldServerSerial = serverSerial(live)

    const rotated = JSON.parse(await cli(['ca', 'rotate', '--json'])) as {
      issuing: { serial: string }
      previous: { serial: string }
      serverCertificate: { serial: string }
    }
    await cli(['device', 'create', 'dev-b', '--out', out])
    const b = bundle(out, 'dev-b')
    expect(b.ca.match(/BEGIN CERTIFICATE/g)).toHaveLength(3)

    // the running broker picks the new CA up from the change feed: B is accepted within a few seconds
    await waitFor(() => records.some((r) => r.msg === 'issuing CA reloaded' && r.reason === 'ca.rotated'), 5000, 'the CA reload')
    const clientB = await connectDevice(port, b)
    expect(serverSerial(clientB)).toBe(rotated.serverCertificate.serial)
    await clientB.publishAsync('devices/dev-b/telemetry', JSON.stringify({ t: 1 }), { qos: 1 })
    expect(normalizeSerial(gatehouse.control.authority.ca.issuing.certificate.serialNumber)).toBe(rotated.issuing.serial)

    // A's session from before the rotation is still up, and A (old certificate, old ca.pem) connects again
    expect(live.connected).toBe(true)
    await live.publishAsync('devices/dev-a/telemetry', JSON.stringify({ t: 2 }), { qos: 1 })
    expect(gatehouse.broker.isConnected('dev-a')).toBe(true)
    const again = await connectDevice(port, a, { clientId: 'dev-a' })
    expect(serverSerial(again)).toBe(rotated.serverCertificate.serial)
    expect(serverSerial(again)).not.toBe(oldServerSerial)
    await again.publishAsync('devices/dev-a/telemetry', JSON.stringify({ t: 3 }), { qos: 1 })

    // a device the running server creates itself now gets the new CA too
    const c = await gatehouse.control.authority.createDevice({ id: 'dev-c' }, 'operator:test')
    const clientC = await connectDevice(port, {
      deviceId: 'dev-c',
      cert: c.certificatePem,
      key: c.privateKey!.pem,
      ca: c.chainPem,
      serial: c.serial,
    })
    expect(clientC.connected).toBe(true)
  })
})
