import net from 'node:net'
import tls from 'node:tls'
import pino from 'pino'
import { createBroker } from '../../../broker/index.ts'
import { systemClock } from '../../../certs/index.ts'
import { createFakeDirectory } from '../../helpers/fake-directory.ts'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../helpers/broker-harness.ts'
import { makeBrokerPki, type BrokerPki, type DeviceCredentials } from '../../helpers/broker-pki.ts'
import { closedWithin, connectDevice, rawTlsClient } from '../../helpers/mqtt-clients.ts'

let pki: BrokerPki

beforeAll(async () => {
  pki = await makeBrokerPki()
})

/** A plain TCP connection to the broker; resolves `closed` when the broker drops it. */
async function tcp(port: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  onTestFinished(() => void socket.destroy())
  socket.on('error', () => {})
  const started = performance.now()
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return { socket, closed }
}

/** True when a TLS handshake completes (the connection was admitted), false when the broker closes it first. */
async function tlsHandshakes(port: number, creds: DeviceCredentials): Promise<boolean> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost' })
  onTestFinished(() => void socket.destroy())
  socket.on('error', () => {})
  return new Promise((resolve) => {
    socket.once('secureConnect', () => resolve(true))
    socket.once('close', () => resolve(false))
  })
}

describe('connection limits', () => {
  it('refuses connections from an address over maxConnectionsPerIp before TLS, audited once', async () => {
    const h = await startBroker(pki.serverTls, { limits: { maxConnectionsPerIp: 2 } })
    const first = await tcp(h.port)
    const second = await tcp(h.port)
    const third = await tcp(h.port)
    const fourth = await tcp(h.port)
    await third.closed
    await fourth.closed
    expect(first.socket.destroyed || second.socket.destroyed).toBe(false)
    expect(h.directory.auditsFor('connection.throttled')).toEqual([
      expect.objectContaining({ subject: 'ip:127.0.0.1', details: expect.objectContaining({ reason: 'too-many-connections' }) }),
    ])
    // a slot frees up once the broker has seen a connection close (bounded retries: it may lag the client)
    const creds = await pki.device('slot-1')
    first.socket.destroy()
    await first.closed
    let admitted = false
    for (let attempt = 0; attempt < 20 && !admitted; attempt++) admitted = await tlsHandshakes(h.port, creds)
    expect(admitted).toBe(true)
  })

  it('refuses connections over the per-address rate', async () => {
    const h = await startBroker(pki.serverTls, { limits: { connectionRatePerIp: { ratePerSecond: 0.01, burst: 3 } } })
    const sockets = []
    for (let i = 0; i < 4; i++) sockets.push(await tcp(h.port))
    await sockets[3]?.closed
    expect(sockets.slice(0, 3).every((s) => !s.socket.destroyed)).toBe(true)
    expect(h.directory.auditsFor('connection.throttled')[0]?.details).toMatchObject({ reason: 'connection-rate' })
  })

  it('closes a connection that does not finish the TLS handshake in time', async () => {
    const h = await startBroker(pki.serverTls, { limits: { handshakeTimeoutMs: 300 } })
    const { closed } = await tcp(h.port)
    expect(await closed).toBeLessThan(5000)
  })

  it('closes a TLS connection that sends no CONNECT in time', async () => {
    const h = await startBroker(pki.serverTls, { limits: { connectTimeoutMs: 300 } })
    const dev = await pki.device('pump-7')
    const { client } = await rawTlsClient(h.port, dev)
    const started = performance.now()
    await client.closed
    expect(performance.now() - started).toBeLessThan(5000)
    expect(h.directory.lookups).toHaveLength(0)
  })

  it('closes a device that sends a packet over maxPacketBytes', async () => {
    const h = await startBroker(pki.serverTls, { limits: { maxPacketBytes: 4096 } })
    const dev = await pki.device('pump-7')
    h.directory.addCertificate('pump-7', dev.serial)
    const published: unknown[] = []
    h.broker.onDevicePublish((m) => published.push(m))
    const client = await connectDevice(h.port, dev)
    await client.publishAsync('devices/pump-7/telemetry', Buffer.alloc(1000), { qos: 1 })
    const closed = closedWithin(client)
    client.publish('devices/pump-7/telemetry', Buffer.alloc(100_000), { qos: 0 })
    await closed
    expect(published).toHaveLength(1)
    expect(h.directory.auditsFor('session.closed')[0]?.details).toMatchObject({ reason: 'packet-too-large' })
  })
})

describe('per-device packet budget over TLS', () => {
  it('closes an mqtt.js device that loops on SUBSCRIBE, audited as device.throttled, and a well-behaved one is untouched', async () => {
    const h = await startBroker(pki.serverTls, { limits: { packetRate: { ratePerSecond: 0.01, burst: 30 } } })
    const [looping, calm] = await Promise.all([pki.device('pump-7'), pki.device('pump-8')])
    h.directory.addCertificate('pump-7', looping.serial)
    h.directory.addCertificate('pump-8', calm.serial)
    const bad = await connectDevice(h.port, looping, { reconnectPeriod: 0 })
    const good = await connectDevice(h.port, calm, { reconnectPeriod: 0 })
    await good.subscribeAsync('devices/pump-8/settings', { qos: 1 })
    const closed = closedWithin(bad)
    let subacks = 0
    for (let i = 0; i < 100 && !bad.disconnected; i++) {
      await Promise.race([bad.subscribeAsync('devices/pump-7/settings', { qos: 1 }).then(() => subacks++), closed])
    }
    expect(subacks).toBeLessThanOrEqual(30)
    await closed
    expect(h.directory.auditsFor('device.throttled')).toEqual([
      expect.objectContaining({ subject: 'pump-7', details: expect.objectContaining({ limit: 'packets', packetType: 'subscribe' }) }),
    ])
    await good.publishAsync('devices/pump-8/telemetry', 'ok', { qos: 1 }) // the other device is untouched
    expect(good.connected).toBe(true)
  })
})

describe('graceful shutdown', () => {
  it('closes every client, stops accepting and resolves', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('pump-7')
    h.directory.addCertificate('pump-7', dev.serial)
    const client = await connectDevice(h.port, dev)
    const pending = await tcp(h.port) // still in the TLS handshake
    const closed = closedWithin(client)
    await h.broker.close()
    await closed
    await pending.closed
    expect(h.broker.connectedDeviceIds()).toEqual([])
    expect(h.directory.listenerCount()).toBe(0)
    await expect(tcp(h.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await h.broker.close() // idempotent
  })

  it('leaves nothing running when the port is taken', async () => {
    const h = await startBroker(pki.serverTls)
    const directory = createFakeDirectory()
    const second = createBroker({ directory, log: pino({ level: 'silent' }), clock: systemClock }, { port: h.port, tls: pki.serverTls })
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' })
    expect(directory.listenerCount()).toBe(0)
    await second.close()
  })

  it('refuses to listen twice', async () => {
    const h = await startBroker(pki.serverTls)
    await expect(h.broker.listen()).rejects.toMatchObject({ code: 'GH_BROKER_STATE' })
  })
})
