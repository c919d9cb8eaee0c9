import net from 'node:net'
import tls from 'node:tls'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { certificateToPem, generateKeyPair, privateKeyToPem, type CryptoKey } from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import type * as X509 from '@peculiar/x509'
import { startBroker, type BrokerHarness } from '../../helpers/broker-harness.ts'
import { makeBrokerPki, type BrokerPki, type DeviceCredentials } from '../../helpers/broker-pki.ts'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'

// Hostile TLS (issue 17, "Bad input"): each attempt is cut off by the handshake timeout or refused, the
// broker counts it under stats().tlsFailures (gatehouse_tls_failures_total), and devices still connect.

let pki: BrokerPki

beforeAll(async () => {
  pki = await makeBrokerPki()
})

const failures = (h: BrokerHarness) => [...h.broker.stats().tlsFailures.values()].reduce((a, b) => a + b, 0)

/** A raw TCP connection that writes `bytes` (then FIN when `end`); resolves how long the broker took to close it. */
async function rawSend(port: number, bytes: Buffer, end: boolean): Promise<number> {
  const socket = net.connect({ host: '127.0.0.1', port })
  onTestFinished(() => void socket.destroy())
  socket.on('error', () => {})
  socket.resume()
  const started = performance.now()
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)))
  socket.once('connect', () => (end ? socket.end(bytes) : socket.write(bytes)))
  return closed
}

/** The ClientHello a real device sends (captured from tls.connect against a plain TCP listener). */
async function clientHello(creds: DeviceCredentials): Promise<Buffer> {
  const server = net.createServer()
  onTestFinished(() => void server.close())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const hello = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))))
  const { port } = server.address() as net.AddressInfo
  const client = tls.connect({ host: '127.0.0.1', port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost' })
  client.on('error', () => {})
  onTestFinished(() => void client.destroy())
  return hello
}

/** A device that still connects and gets its PUBACK: the broker is fine. */
async function deviceStillWorks(h: BrokerHarness, deviceId: string): Promise<void> {
  const creds = await pki.device(deviceId)
  h.directory.addCertificate(deviceId, creds.serial)
  const client = await connectDevice(h.port, creds)
  await client.publishAsync(`devices/${deviceId}/telemetry`, '{"ok":true}', { qos: 1 })
}

/** n CA certificates, each signed by the one before it (the first self-signed), and their keys. */
async function caLadder(n: number, first?: { cert: X509.X509Certificate; key: CryptoKey }) {
  const ladder: { cert: X509.X509Certificate; key: CryptoKey }[] = []
  let parent = first ?? null
  for (let i = 0; i < n; i++) {
    const keys = await generateKeyPair('p256')
    const name = `CN=ladder-${i}`
    const common = {
      serialNumber: (0x1000 + i).toString(16),
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    }
    const cert = parent
      ? await x509.X509CertificateGenerator.create({
          ...common,
          subject: name,
          issuer: parent.cert.subject,
          publicKey: keys.publicKey,
          signingKey: parent.key,
        })
      : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name, keys })
    parent = { cert, key: keys.privateKey }
    ladder.push(parent)
  }
  return ladder
}

/** A clientAuth leaf for `deviceId` under the last rung, and the whole chain (leaf first) in PEM. */
async function leafUnder(ladder: { cert: X509.X509Certificate; key: CryptoKey }[], deviceId: string) {
  const top = ladder[ladder.length - 1]!
  const keys = await generateKeyPair('p256')
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '0abc',
    subject: `CN=${deviceId}`,
    issuer: top.cert.subject,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: top.key,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  })
  const chain = [leaf, ...[...ladder].reverse().map((r) => r.cert)].map(certificateToPem).join('')
  return { cert: chain, key: await privateKeyToPem(keys.privateKey) }
}

/** A TLS attempt with this certificate chain; resolves when the broker has closed the connection. */
async function attemptWith(port: number, cert: string, key: string): Promise<void> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.chain, cert, key, servername: 'localhost' })
  onTestFinished(() => void socket.destroy())
  socket.on('error', () => {})
  socket.resume()
  await new Promise<void>((resolve) => socket.once('close', () => resolve()))
}

describe('hostile TLS', () => {
  it('refuses malformed ClientHellos and counts each', async () => {
    const h = await startBroker(pki.serverTls)
    const hello = await clientHello(await pki.device('hello'))
    const bad = {
      'fail/plain-http': Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      'fail/record-length-lies': Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), Buffer.alloc(64, 0x41)]),
      'fail/hello-length-lies': Buffer.concat([hello.subarray(0, 6), Buffer.from([0xff, 0xff, 0xff]), hello.subarray(9)]),
      'fail/truncated-hello': hello.subarray(0, hello.length >> 1),
      'fail/flipped-bytes': Buffer.from(hello.map((b, i) => (i > 10 && i % 7 === 0 ? b ^ 0xff : b))),
      'fail/sslv2-hello': Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10, ...Buffer.alloc(37, 1)]),
      'fail/zero-record': Buffer.from([0x16, 0x03, 0x03, 0x00, 0x00]),
    }
    for (const [name, bytes] of Object.entries(bad)) {
      const before = failures(h)
      await rawSend(h.port, bytes, true)
      await waitFor(() => failures(h) > before, 5000, `${name} counted as a TLS failure`)
    }
    await deviceStillWorks(h, 'after-hellos')
  })

  it('cuts off a handshake trickled one byte at a time (slowloris) at the handshake timeout, counted', async () => {
    const h = await startBroker(pki.serverTls, { limits: { handshakeTimeoutMs: 400 } })
    const hello = await clientHello(await pki.device('slow'))
    const socket = net.connect({ host: '127.0.0.1', port: h.port })
    onTestFinished(() => void socket.destroy())
    socket.on('error', () => {})
    const started = performance.now()
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)))
    // a byte every 50 ms: each one arrives well inside the timeout, the whole hello would take seconds
    let sent = 0
    const trickle = setInterval(() => !socket.destroyed && sent < hello.length && socket.write(hello.subarray(sent, ++sent)), 50)
    onTestFinished(() => clearInterval(trickle))
    const ms = await closed
    clearInterval(trickle)
    expect(sent).toBeLessThan(hello.length)
    expect(ms).toBeLessThan(3000)
    await waitFor(() => h.broker.stats().tlsFailures.get('ERR_TLS_HANDSHAKE_TIMEOUT'), 5000, 'the timeout counted')
    await deviceStillWorks(h, 'after-slowloris')
  })

  it('refuses renegotiation on a device connection: the session is closed and counted', async () => {
    const h = await startBroker(pki.serverTls)
    const creds = await pki.device('reneg')
    h.directory.addCertificate('reneg', creds.serial)
    const client = await connectDevice(h.port, creds, { maxVersion: 'TLSv1.2' } as object)
    const socket = client.stream as tls.TLSSocket
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    socket.renegotiate({ rejectUnauthorized: false }, () => {})
    await closed
    await waitFor(() => h.broker.stats().tlsFailures.get('ERR_TLS_RENEGOTIATION_DISABLED'), 5000, 'the renegotiation counted')
    await deviceStillWorks(h, 'after-reneg')
  })

  it('refuses a client chain of 12 certificates, untrusted or under the device CA, and counts each', async () => {
    const h = await startBroker(pki.serverTls)
    const untrusted = await leafUnder(await caLadder(12), 'deep-1')
    const under = await leafUnder(await caLadder(11, { cert: pki.ca.issuing.certificate, key: pki.ca.issuing.privateKey }), 'deep-2')
    h.directory.addDevice('deep-1')
    h.directory.addDevice('deep-2')
    for (const [name, chain] of Object.entries({ untrusted, under })) {
      const before = failures(h)
      await attemptWith(h.port, chain.cert, chain.key)
      await waitFor(() => failures(h) > before, 5000, `the ${name} chain counted as a TLS failure`)
    }
    expect(h.broker.stats().accepted.device).toBe(0)
    await deviceStillWorks(h, 'after-chains')
  })
})
