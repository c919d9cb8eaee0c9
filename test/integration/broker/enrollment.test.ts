import type { MqttClient } from 'mqtt'
import { beforeAll, describe, expect, it } from 'vitest'
import { attachEnrollment } from '../../../broker/index.ts'
import type { EnrollmentAnswer, EnrollmentService } from '../../../broker/enrollment.ts'
import { certificateToPem, createKeyAndCsr, cryptoRandom, normalizeSerial, parseCsr, systemClock } from '../../../certs/index.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { createRecordingLogger, startBroker, type BrokerHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { makeBrokerPki, type BrokerPki, type DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, connectDevice } from '../../helpers/mqtt-clients.ts'

let pki: BrokerPki
let claimCreds: DeviceCredentials

beforeAll(async () => {
  pki = await makeBrokerPki('Enrollment Test')
  claimCreds = await pki.claim('batch-1')
})

const NONCE_A = 'nonceAAAAAAAAAAAAAAA'
const NONCE_B = 'nonceBBBBBBBBBBBBBBB'

/**
 * A small, real enrollment service (no provisioning/): claim issues a certificate for the requested id
 * from the test CA and registers it in the fake directory; renew issues one for the session's device.
 * Refusals are answers, as the contract says.
 */
function testService(h: BrokerHarness): EnrollmentService & { calls: string[] } {
  const calls: string[] = []
  async function issue(deviceId: string, csrPem: string, requestId: unknown): Promise<EnrollmentAnswer> {
    const csr = await parseCsr(csrPem, { expectedDeviceId: deviceId })
    const cert = await issueDeviceCertificate(
      pki.ca.issuing,
      { deviceId, publicKey: csr.publicKey, validDays: 30 },
      { clock: systemClock, random: cryptoRandom },
    )
    h.directory.addCertificate(deviceId, cert.serialNumber)
    return {
      ok: true,
      requestId,
      deviceId,
      certificate: certificateToPem(cert),
      chain: pki.chain,
      serial: normalizeSerial(cert.serialNumber),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
    }
  }
  return {
    calls,
    async claim(context, payload) {
      calls.push(`claim:${context.claimId}:${context.nonce}`)
      const body = JSON.parse(Buffer.from(payload).toString('utf8')) as { deviceId: string; csr: string; requestId?: string }
      if (h.directory.devices.has(body.deviceId)) {
        return { ok: false, requestId: body.requestId, error: { code: 'GH_DEVICE_EXISTS', message: 'taken' } }
      }
      return issue(body.deviceId, body.csr, body.requestId)
    },
    async renew(context, payload) {
      calls.push(`renew:${context.deviceId}:${context.serial}`)
      const body = JSON.parse(Buffer.from(payload).toString('utf8')) as { csr: string; requestId?: string }
      return issue(context.deviceId, body.csr, body.requestId)
    },
  }
}

async function setup() {
  const h = await startBroker(pki.serverTls)
  h.directory.addClaim('batch-1', claimCreds.serial)
  const service = testService(h)
  attachEnrollment(h.broker, { service, log: createRecordingLogger().log })
  return { h, service }
}

function connectClaim(h: BrokerHarness, nonce: string): Promise<MqttClient> {
  return connectDevice(h.port, claimCreds, { clientId: `claim:${nonce}`, clean: true })
}

function nextMessage(client: MqttClient, topic: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return
      client.off('message', onMessage)
      resolve(JSON.parse(payload.toString()) as Record<string, unknown>)
    }
    client.on('message', onMessage)
  })
}

describe('enrollment over mutual TLS', () => {
  it('provisions a device through a claim session, and the device then connects as itself', async () => {
    const { h, service } = await setup()
    const a = await connectClaim(h, NONCE_A)
    await a.subscribeAsync(`provisioning/${NONCE_A}/response`, { qos: 1 })
    const { csrPem, privateKeyPem } = await createKeyAndCsr({ commonName: 'pump-42' })
    const answer = nextMessage(a, `provisioning/${NONCE_A}/response`)
    await a.publishAsync(`provisioning/${NONCE_A}/request`, JSON.stringify({ deviceId: 'pump-42', csr: csrPem, requestId: 'r1' }), {
      qos: 1,
    })
    const got = await answer
    expect(got).toMatchObject({ ok: true, requestId: 'r1', deviceId: 'pump-42', certificate: expect.stringContaining('BEGIN CERTIFICATE') })
    expect(service.calls).toEqual([`claim:batch-1:${NONCE_A}`])
    a.end(true)

    const device = await connectDevice(h.port, {
      deviceId: 'pump-42',
      cert: got.certificate as string,
      key: privateKeyPem,
      ca: pki.chain,
      serial: got.serial as string,
    })
    expect(device.connected).toBe(true)
    expect(h.broker.isConnected('pump-42')).toBe(true)
  })

  it("never lets a second claim session read the first one's response", async () => {
    const { h } = await setup()
    const a = await connectClaim(h, NONCE_A)
    const b = await connectClaim(h, NONCE_B)
    await a.subscribeAsync(`provisioning/${NONCE_A}/response`, { qos: 1 })
    const refused = await b
      .subscribeAsync([`provisioning/${NONCE_A}/response`, 'provisioning/+/response', 'provisioning/#'], { qos: 1 })
      .then(
        () => null,
        (e: { packet?: { granted?: number[] } }) => e,
      )
    expect(refused?.packet?.granted).toEqual([128, 128, 128])
    const seenByB: string[] = []
    b.on('message', (topic) => seenByB.push(topic))
    const { csrPem } = await createKeyAndCsr({ commonName: 'pump-43' })
    const answer = nextMessage(a, `provisioning/${NONCE_A}/response`)
    await a.publishAsync(`provisioning/${NONCE_A}/request`, JSON.stringify({ deviceId: 'pump-43', csr: csrPem }), { qos: 1 })
    expect(await answer).toMatchObject({ ok: true, deviceId: 'pump-43' })
    // the marker: b's own answer, sent after a's; a copy of a's would have reached b before it
    await b.subscribeAsync(`provisioning/${NONCE_B}/response`, { qos: 1 })
    const own = nextMessage(b, `provisioning/${NONCE_B}/response`)
    await b.publishAsync(`provisioning/${NONCE_B}/request`, JSON.stringify({ deviceId: 'pump-43', requestId: 'b-marker' }), { qos: 1 })
    expect(await own).toMatchObject({ ok: false, requestId: 'b-marker', error: { code: 'GH_DEVICE_EXISTS' } })
    expect(seenByB).toEqual([`provisioning/${NONCE_B}/response`])
    expect(b.connected).toBe(true)
    expect(h.directory.auditsFor('subscribe.refused')).toEqual([
      expect.objectContaining({
        subject: 'claim:batch-1',
        details: expect.objectContaining({ topic: `provisioning/${NONCE_A}/response`, clientId: `claim:${NONCE_B}` }),
      }),
    ])
  })

  it("refuses a second connection with a live claim session's clientId, and an unknown claim", async () => {
    const { h } = await setup()
    const a = await connectClaim(h, NONCE_A)
    const again = await attemptConnect(h.port, claimCreds, { clientId: `claim:${NONCE_A}` })
    expect(again.connack).toBe(5)
    expect(a.connected).toBe(true)
    const unknown = await pki.claim('batch-9')
    const refused = await attemptConnect(h.port, unknown, { clientId: `claim:${NONCE_B}` })
    expect(refused.connack).toBe(5)
    expect(h.directory.auditsFor('connect.refused').map((r) => r.details?.reason)).toEqual(['client-id-in-use', 'unknown-claim'])
  })

  it('renews a device certificate over devices/{id}/renewal/*', async () => {
    const { h, service } = await setup()
    const creds = await pki.device('pump-7')
    h.directory.addCertificate('pump-7', creds.serial)
    const device = await connectDevice(h.port, creds)
    await device.subscribeAsync('devices/pump-7/renewal/response', { qos: 1 })
    const { csrPem } = await createKeyAndCsr({ commonName: 'pump-7' })
    const answer = nextMessage(device, 'devices/pump-7/renewal/response')
    await device.publishAsync('devices/pump-7/renewal/request', JSON.stringify({ csr: csrPem, requestId: 'x' }), { qos: 1 })
    const got = await answer
    expect(got).toMatchObject({ ok: true, requestId: 'x', deviceId: 'pump-7' })
    expect(got.serial).not.toBe(creds.serial)
    expect(service.calls).toEqual([`renew:pump-7:${creds.serial}`])
    await waitFor(() => h.directory.certificates.size === 2, 2000, 'the new certificate')
  })
})
