import { X509Certificate } from 'node:crypto'
import { existsSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { normalizeSerial } from '../../../certs/index.ts'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { listPreviousIssuers } from '../../../provisioning/ca/keystore.ts'
import { dataDirLayout, initControlPlane, openControlPlane, rotateCa, showCa } from '../../../provisioning/index.ts'
import { credentialsOf } from '../../helpers/broker-pki.ts'
import { attemptConnect } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'
import { createDevices, simGatehouse, startDevice } from '../device-sim/gatehouse-fixture.ts'
import { serialFirstByteRandom } from '../../helpers/random.ts'
import { openssl } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

// A certificate serial has three printed forms: Node's getPeerCertificate() and openssl print whole bytes in
// upper case ("0A1B…"), @peculiar/x509 whole bytes in lower case ("0a1b…"), and the registry keeps the
// canonical form (normalizeSerial: "a1b…"). Every serial here starts with the byte 0x0a, so the three differ,
// and each boundary must compare the canonical form or a revocation, a CRL entry or a previous CA is missed.

const log = pino({ level: 'silent' })
const random = serialFirstByteRandom(0x0a)

describe('serials whose first digit is 0: one canonical form at every boundary', () => {
  it('a revoked device is on the CRL as openssl prints its serial, and its CONNECT is refused', async () => {
    const dataDir = join(tempDir(), 'data')
    await initControlPlane(dataDir, {}, { log, random }, 'op')
    const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false }, {}), { log })
    onTestFinished(() => gatehouse.close())
    const operator = await openControlPlane(dataDir, {}, { log, random })
    onTestFinished(() => operator.close())

    const issued = await operator.authority.createDevice({ id: 'pump-1', group: null }, 'operator:test')
    const printed = new X509Certificate(issued.certificatePem).serialNumber // Node's form, as the broker sees it
    expect(printed).toMatch(/^0A/)
    expect(issued.serial).toBe(normalizeSerial(printed))
    const creds = credentialsOf(issued)
    expect((await attemptConnect(gatehouse.mqtt.port, creds)).connack).toBe(0)

    const { revokedSerials } = await operator.authority.revokeDevice('pump-1', 'keyCompromise', 'operator:test')
    expect(revokedSerials).toEqual([issued.serial])
    expect((await attemptConnect(gatehouse.mqtt.port, creds)).connack).toBe(5)
    const [crl] = await operator.authority.currentCrls()
    expect(crl?.issuerSerial).toMatch(/^a/) // the issuing CA's serial starts with 0x0a too
    const text = (await openssl(['crl', '-noout', '-text'], crl!.pem)).stdout
    expect(text).toContain(`Serial Number: ${printed}`)
  })

  it('a device on such a certificate renews over MQTT, and the certificate it connected with is superseded', async () => {
    // made 250 days ago on a 365-day certificate: in the renewal window (from day ~244) today
    let offset = -250 * 86_400_000
    const sim = await simGatehouse({}, { clock: { now: () => new Date(Date.now() + offset) }, random })
    const [bundle] = await createDevices(sim.gatehouse, ['sim-0001'])
    offset = 0
    const printed = new X509Certificate(bundle!.cert).serialNumber
    expect(printed).toMatch(/^0A/)
    const device = startDevice(bundle!, { broker: sim.broker, ratePerSecond: 5 })
    await waitFor(
      () => device.stats().renewals === 1,
      15_000,
      () => `one renewal; have ${JSON.stringify(device.stats())}`,
    )
    const { certificates } = await sim.gatehouse.control.authority.getDevice('sim-0001')
    expect(certificates.map((c) => [c.serial.startsWith('a'), c.status])).toEqual([
      [true, 'superseded'],
      [true, 'active'],
    ])
    expect(certificates[0]!.serial).toBe(normalizeSerial(printed))
  })

  it('ca rotate keeps the replaced issuing CA in ca/previous/<canonical serial>/, and reads a folder named otherwise canonically', async () => {
    const dataDir = join(tempDir(), 'data')
    await initControlPlane(dataDir, {}, { log, random }, 'op')
    const layout = dataDirLayout(dataDir)
    const before = (await showCa(dataDir, { log })).issuing.serial
    expect(before).toMatch(/^a/)
    const summary = await rotateCa(dataDir, {}, { log, random }, 'op')
    expect(summary.previous.serial).toBe(before)
    expect(summary.paths.previous).toBe(join(layout.previousDir, before))
    expect(existsSync(join(layout.previousDir, before, 'issuing.key'))).toBe(true)
    expect(listPreviousIssuers(layout).map((p) => p.serial)).toEqual([before])

    // a folder named with the leading zero (by hand, or as @peculiar/x509 prints it) names the same CA
    renameSync(join(layout.previousDir, before), join(layout.previousDir, `0${before}`))
    expect(listPreviousIssuers(layout).map((p) => p.serial)).toEqual([before])
  })
})
