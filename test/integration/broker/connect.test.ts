import mqttPacket from 'mqtt-packet'
import { beforeAll, describe, expect, it } from 'vitest'
import type { DevicePublish } from '../../../broker/index.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { startBroker } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { makeBrokerPki, selfSignedDevice, type BrokerPki } from '../../helpers/broker-pki.ts'
import { attemptConnect, connectDevice, rawTlsClient } from '../../helpers/mqtt-clients.ts'

const DAY = 86_400_000
let pki: BrokerPki
let otherPki: BrokerPki

beforeAll(async () => {
  ;[pki, otherPki] = await Promise.all([makeBrokerPki('Gatehouse Test'), makeBrokerPki('Other Test')])
})

describe('broker over mutual TLS', () => {
  it('lets a valid device connect, publish telemetry and receive its settings', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('pump-7')
    h.directory.addCertificate('pump-7', dev.serial)
    const published: DevicePublish[] = []
    h.broker.onDevicePublish((m) => published.push(m))

    const client = await connectDevice(h.port, dev)
    expect(h.broker.isConnected('pump-7')).toBe(true)
    const granted = await client.subscribeAsync('devices/pump-7/settings', { qos: 1 })
    expect(granted.map((g) => g.qos)).toEqual([1])

    await client.publishAsync('devices/pump-7/telemetry', '{"t":21.5}', { qos: 1 })
    await waitFor(() => published.length === 1, 5000, 'telemetry')
    expect(published[0]).toMatchObject({ deviceId: 'pump-7', kind: 'telemetry', topic: 'devices/pump-7/telemetry' })
    expect(published[0]?.payload.toString()).toBe('{"t":21.5}')

    const received = new Promise<[string, string]>((resolve) => client.once('message', (t, p) => resolve([t, p.toString()])))
    await h.broker.publishToDevice('devices/pump-7/settings', '{"interval":10}', { qos: 1 })
    expect(await received).toEqual(['devices/pump-7/settings', '{"interval":10}'])
    expect(h.directory.audits).toEqual([])
  })

  // Node verifies the client chain after the handshake and then closes the connection without an alert,
  // so the client sees its connection closed (mqtt.js: 'close', no 'connect', no CONNACK); the broker
  // logs the verification error.
  describe('refused by TLS (closed before any CONNACK)', () => {
    it.each([
      ['fail/other-ca', () => otherPki.device('pump-7'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['fail/self-signed', () => selfSignedDevice('pump-7', pki.chain), 'DEPTH_ZERO_SELF_SIGNED_CERT'],
      [
        'fail/expired',
        () => pki.device('pump-7', { clock: fixedClock(new Date(Date.now() - 20 * DAY)), validDays: 1 }),
        'CERT_HAS_EXPIRED',
      ],
      ['fail/not-yet-valid', () => pki.device('pump-7', { clock: fixedClock(new Date(Date.now() + 10 * DAY)) }), 'CERT_NOT_YET_VALID'],
      // OpenSSL checks the purpose of client certificates: a serverAuth-only one does not verify
      ['fail/server-only-certificate', () => pki.serverOnly('pump-7'), 'INVALID_PURPOSE'],
    ])('%s', async (_name, make, reason) => {
      const h = await startBroker(pki.serverTls)
      const creds = await make()
      h.directory.addCertificate('pump-7', creds.serial) // the directory would say yes: TLS must say no
      const result = await attemptConnect(h.port, { ...creds, ca: pki.chain })
      expect(result.connack).toBeNull()
      expect(h.directory.lookups).toHaveLength(0)
      expect(h.broker.isConnected('pump-7')).toBe(false)
      expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'TLS refused', reason, level: 30, remoteAddress: '127.0.0.1' }))
    })

    it('fail/no-client-certificate', async () => {
      const h = await startBroker(pki.serverTls)
      const result = await attemptConnect(h.port, { ca: pki.chain, deviceId: 'pump-7' })
      expect(result.connack).toBeNull()
      expect(h.directory.lookups).toHaveLength(0)
      expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'TLS refused', level: 30 }))
    })
  })

  describe('refused by the broker (CONNACK 5 "Not authorized", one audit)', () => {
    it.each([
      [
        'fail/revoked-certificate',
        'revoked',
        (h: Awaited<ReturnType<typeof startBroker>>, serial: string) => h.directory.addCertificate('pump-7', serial, 'revoked'),
      ],
      [
        'fail/disabled-device',
        'disabled',
        (h: Awaited<ReturnType<typeof startBroker>>, serial: string) => {
          h.directory.addCertificate('pump-7', serial)
          h.directory.setDeviceStatus('pump-7', 'disabled')
        },
      ],
    ])('%s', async (_name, reason, arrange) => {
      const h = await startBroker(pki.serverTls)
      const dev = await pki.device('pump-7')
      arrange(h, dev.serial)
      const result = await attemptConnect(h.port, dev)
      expect(result.connack).toBe(5)
      expect(result.error).toMatchObject({ code: 5, message: expect.stringMatching(/not authorized/i) })
      expect(h.directory.auditsFor('connect.refused')).toEqual([
        expect.objectContaining({
          subject: 'pump-7',
          details: expect.objectContaining({ reason, serial: dev.serial, remoteAddress: '127.0.0.1' }),
        }),
      ])
      expect(h.directory.audits).toHaveLength(1)
    })

    it('fail/client-id-differs-from-cn', async () => {
      const h = await startBroker(pki.serverTls)
      const dev = await pki.device('pump-7')
      h.directory.addCertificate('pump-7', dev.serial)
      const result = await attemptConnect(h.port, dev, { clientId: 'pump-8' })
      expect(result.connack).toBe(5)
      expect(h.directory.auditsFor('connect.refused')[0]?.details).toMatchObject({ reason: 'client-id-mismatch', clientId: 'pump-8' })
      expect(h.directory.lookups).toHaveLength(0)
    })
  })

  describe('MQTT 5', () => {
    it('mqtt.js with protocolVersion 5 gets a clean refusal, not a hang', async () => {
      const h = await startBroker(pki.serverTls)
      const dev = await pki.device('pump-7')
      h.directory.addCertificate('pump-7', dev.serial)
      const started = performance.now()
      const result = await attemptConnect(h.port, dev, { protocolVersion: 5 })
      expect(performance.now() - started).toBeLessThan(5000)
      expect(result.connack).toBe(1)
      expect(result.error?.message).toMatch(/protocol version/i)
      expect(h.directory.lookups).toHaveLength(0)
    })

    it('a raw MQTT 5 CONNECT gets CONNACK 1 and the connection is closed', async () => {
      const h = await startBroker(pki.serverTls)
      const dev = await pki.device('pump-7')
      h.directory.addCertificate('pump-7', dev.serial)
      const { socket, client } = await rawTlsClient(h.port, dev, 4)
      socket.write(
        mqttPacket.generate(
          {
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 5,
            clientId: 'pump-7',
            clean: true,
            keepalive: 60,
            properties: { sessionExpiryInterval: 0 },
          },
          { protocolVersion: 5 },
        ),
      )
      expect(await client.next(5000)).toMatchObject({ cmd: 'connack', returnCode: 1 })
      await client.closed
    })
  })

  it('lets a second connection with the same clientId take the session over, audited once', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('pump-7')
    h.directory.addCertificate('pump-7', dev.serial)
    const first = await connectDevice(h.port, dev)
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()))
    const second = await connectDevice(h.port, dev)
    await firstClosed
    expect(second.connected).toBe(true)
    expect(h.broker.connectedDeviceIds()).toEqual(['pump-7'])
    expect(h.directory.auditsFor('session.takeover')).toHaveLength(1)
    expect(h.directory.audits).toHaveLength(1)
  })
})
