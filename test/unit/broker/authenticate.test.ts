import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import {
  asTlsPeer,
  duplexPair,
  fakePeerCertificate,
  packetClient,
  SERVER_AUTH_OID,
  CLIENT_AUTH_OID,
} from '../../helpers/mqtt-packet-stream.ts'

const SERIAL = '0a1b2c3d'

describe('authenticate hook', () => {
  it('accepts an active device whose clientId equals the certificate CN', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const { connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(h.core.isConnected('pump-7')).toBe(true)
    expect(h.core.connectedDeviceIds()).toEqual(['pump-7'])
    expect(h.core.connection('pump-7')).toMatchObject({ deviceId: 'pump-7', serial: '0a1b2c3d'.replace(/^0/, ''), tier: 'standard' })
    expect(h.directory.lookups).toHaveLength(1)
    // accepted connections are logged, not audited
    expect(h.directory.audits).toEqual([])
    await waitFor(() => h.logs.some((r) => r.msg === 'device connected'), 2000, 'connected log')
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'device connected', deviceId: 'pump-7', level: 30 }))
  })

  it.each([
    ['keepalive 0 (none) -> max', 0, 1200],
    ['keepalive above max -> max', 1201, 1200],
    ['keepalive below min -> min', 1, 5],
    ['keepalive in range kept', 60, 60],
  ])('%s: accepted, no audit, the clamped value is the one kept', async (_name, keepalive, kept) => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const { connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL, keepalive })
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(h.directory.audits).toEqual([])
    // aedes' idle timer (handlers/connect.js): 1.5 x keepalive seconds, in ms, + 1
    const client = (h.core.aedes as unknown as { clients: Record<string, { _keepaliveInterval: number }> }).clients['pump-7']
    expect(client?._keepaliveInterval).toBe(kept * 1500 + 1)
  })

  it.each([
    ['fail/revoked-certificate', (h: Harness) => h.directory.addCertificate('pump-7', SERIAL, 'revoked'), {}, 'revoked'],
    ['fail/superseded-certificate', (h: Harness) => h.directory.addCertificate('pump-7', SERIAL, 'superseded'), {}, 'superseded'],
    [
      'fail/disabled-device',
      (h: Harness) => {
        h.device('pump-7', SERIAL)
        h.directory.setDeviceStatus('pump-7', 'disabled')
      },
      {},
      'disabled',
    ],
    [
      'fail/revoked-device',
      (h: Harness) => {
        h.device('pump-7', SERIAL)
        h.directory.setDeviceStatus('pump-7', 'revoked')
      },
      {},
      'revoked',
    ],
    ['fail/unknown-certificate', (h: Harness) => h.directory.addDevice('pump-7'), {}, 'unknown-certificate'],
    ['fail/unknown-device', () => {}, {}, 'unknown-device'],
    ['fail/client-id-mismatch', (h: Harness) => h.device('pump-7', SERIAL), { cn: 'pump-7', clientId: 'pump-8' }, 'client-id-mismatch'],
    ['fail/no-certificate', (h: Harness) => h.device('pump-7', SERIAL), { noCertificate: true }, 'no-client-certificate'],
    [
      'fail/server-only-certificate',
      (h: Harness) => h.device('pump-7', SERIAL),
      { extKeyUsage: [SERVER_AUTH_OID] },
      'not-a-client-certificate',
    ],
    ['fail/cn-not-a-device-id', (h: Harness) => h.device('pump-7', SERIAL), { cn: 'pump/7', clientId: 'pump/7' }, 'invalid-common-name'],
    [
      'fail/two-common-names',
      (h: Harness) => h.device('pump-7', SERIAL),
      { cn: ['pump-7', 'pump-8'], clientId: 'pump-7' },
      'invalid-common-name',
    ],
    ['fail/no-common-name', (h: Harness) => h.device('pump-7', SERIAL), { cn: null, clientId: 'pump-7' }, 'invalid-common-name'],
    ['fail/expired', (h: Harness) => h.device('pump-7', SERIAL), { notAfter: new Date('2025-12-31T23:59:59Z') }, 'expired'],
    ['fail/not-yet-valid', (h: Harness) => h.device('pump-7', SERIAL), { notBefore: new Date('2026-01-01T00:00:01Z') }, 'not-yet-valid'],
    [
      'fail/will-to-other-device',
      (h: Harness) => h.device('pump-7', SERIAL),
      {
        will: { topic: 'devices/pump-8/telemetry', payload: Buffer.from('x'), qos: 0 as const, retain: false },
      },
      'will-not-permitted',
    ],
  ])('%s: CONNACK 5, one connect.refused audit, connection closed', async (_name, arrange, connect, reason) => {
    const h = await startCore()
    arrange(h)
    const { client, connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL, ...connect })
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 5 })
    await client.closed
    expect(h.core.isConnected('pump-7')).toBe(false)
    expect(h.directory.auditsFor('connect.refused')).toEqual([
      expect.objectContaining({ actor: 'broker', details: expect.objectContaining({ reason, remoteAddress: '192.0.2.10' }) }),
    ])
    expect(h.directory.audits).toHaveLength(1)
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'connect refused', reason, level: 30, code: 'GH_BROKER_CONNECT_REFUSED' }))
  })

  it('audits a refusal under the device id, or cn:<CN> when the CN is not a device id', async () => {
    const h = await startCore()
    await h.connect({ clientId: 'pump-7', serial: SERIAL })
    await h.connect({ cn: 'Pump 7', clientId: 'Pump 7', serial: 'ff' })
    expect(h.directory.audits.map((a) => a.subject)).toEqual(['pump-7', 'cn:Pump 7'])
  })

  it('accepts a certificate with clientAuth among several extended key usages', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const { connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL, extKeyUsage: [SERVER_AUTH_OID, CLIENT_AUTH_OID] })
    expect(connack).toMatchObject({ returnCode: 0 })
  })

  it('answers CONNACK 3 and audits nothing when the directory fails', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    h.directory.failNextLookup()
    const { connack, client } = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(connack).toMatchObject({ returnCode: 3 })
    await client.closed
    expect(h.directory.audits).toEqual([])
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: 'device lookup failed', level: 50, code: 'GH_BROKER_DIRECTORY_UNAVAILABLE' }),
    )
  })

  it('makes a new directory lookup on every connect (no broker-side cache)', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const first = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(first.connack).toMatchObject({ returnCode: 0 })
    first.client.send({ cmd: 'disconnect' })
    await first.client.closed
    h.directory.setCertificateStatus(SERIAL, 'revoked') // in the store only: no event
    const second = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(second.connack).toMatchObject({ returnCode: 5 })
    expect(h.directory.lookups).toHaveLength(2)
  })

  it('refuses a connect whose lookup was in flight when the device was revoked', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const release = h.directory.holdLookups()
    const pending = h.connect({ clientId: 'pump-7', serial: SERIAL })
    await waitFor(() => h.directory.lookups.length === 1, 2000, 'lookup')
    // the event arrives before the (stale) answer; the store is not changed, so the answer says active
    h.directory.emit({ type: 'device.revoked', deviceId: 'pump-7' })
    release()
    const { connack } = await pending
    expect(connack).toMatchObject({ returnCode: 5 })
    expect(h.directory.auditsFor('connect.refused')[0]?.details).toMatchObject({
      reason: 'invalidated-during-connect',
      event: 'device.revoked',
    })
  })

  it('refuses MQTT 5 with CONNACK "unacceptable protocol version" and closes', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const [brokerSide, deviceSide] = duplexPair()
    asTlsPeer(brokerSide, fakePeerCertificate({ cn: 'pump-7', serial: SERIAL }))
    h.core.handle(brokerSide)
    const client = packetClient(deviceSide, 4) // read the answer as 3.1.1: aedes writes a 3.1.1 CONNACK
    deviceSide.write(
      mqttPacket.generate(
        { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'pump-7', clean: true, keepalive: 60 },
        { protocolVersion: 5 },
      ),
    )
    expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 1 })
    await client.closed
    expect(h.directory.lookups).toHaveLength(0)
    expect(h.directory.audits).toHaveLength(0)
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: 'connect refused', reason: 'unsupported-protocol-version', protocolVersion: 5 }),
    )
  })

  it('lets a second connection take the session over, audited once', async () => {
    const h = await startCore()
    h.device('pump-7', SERIAL)
    const first = await h.connect({ clientId: 'pump-7', serial: SERIAL, remoteAddress: '192.0.2.1' })
    const second = await h.connect({ clientId: 'pump-7', serial: SERIAL, remoteAddress: '192.0.2.2' })
    expect(second.connack).toMatchObject({ returnCode: 0 })
    await first.client.closed
    expect(h.core.isConnected('pump-7')).toBe(true)
    expect(h.core.connection('pump-7')?.remoteAddress).toBe('192.0.2.2')
    expect(h.directory.auditsFor('session.takeover')).toEqual([
      expect.objectContaining({
        subject: 'pump-7',
        details: expect.objectContaining({ remoteAddress: '192.0.2.2', previousRemoteAddress: '192.0.2.1' }),
      }),
    ])
    expect(h.directory.audits).toHaveLength(1)
  })
})

type Harness = Awaited<ReturnType<typeof startCore>>

describe('directory failures never break the broker', () => {
  it('still answers CONNACK 5 when audit throws, and logs the failure', async () => {
    const h = await startCore()
    h.directory.audit = () => {
      throw new Error('disk full')
    }
    const { connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(connack).toMatchObject({ returnCode: 5 })
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'audit failed', level: 50, action: 'connect.refused' }))
  })

  it('answers CONNACK 3 when lookup throws synchronously', async () => {
    const h = await startCore()
    h.directory.lookup = () => {
      throw new Error('not async')
    }
    const { connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(connack).toMatchObject({ returnCode: 3 })
  })
})
