import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startBroker, type BrokerHarness } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { makeBrokerPki, selfSignedDevice, type BrokerPki, type DeviceCredentials } from '../../helpers/broker-pki.ts'
import { packetClient, type PacketClient } from '../../helpers/mqtt-packet-stream.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

let pki: BrokerPki

beforeAll(async () => {
  pki = await makeBrokerPki()
})

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

function v1Header(src: string, sport: number): Buffer {
  return Buffer.from(`PROXY ${net.isIPv6(src) ? 'TCP6' : 'TCP4'} ${src} 127.0.0.1 ${sport} 8883\r\n`)
}

function v2Header(src: string, sport: number): Buffer {
  const body = Buffer.alloc(12)
  for (const [i, octet] of src.split('.').entries()) body.writeUInt8(Number(octet), i)
  Buffer.from([127, 0, 0, 1]).copy(body, 4)
  body.writeUInt16BE(sport, 8)
  body.writeUInt16BE(8883, 10)
  const head = Buffer.alloc(4)
  head.writeUInt8(0x21, 0) // version 2, PROXY
  head.writeUInt8(0x11, 1) // TCP over IPv4
  head.writeUInt16BE(body.length, 2)
  return Buffer.concat([V2_SIGNATURE, head, body])
}

/** A raw TCP connection to `port`; `closed` resolves when the other side drops it. */
async function tcp(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress })
  onTestFinished(() => void socket.destroy())
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return { socket, closed }
}

/** Optionally writes a PROXY header, then does mutual TLS and an MQTT CONNECT on the same socket. */
async function connectThrough(
  port: number,
  dev: DeviceCredentials,
  header: Buffer | null,
  localAddress = '127.0.0.1',
): Promise<{ client: PacketClient; connack: unknown }> {
  const { socket } = await tcp(port, localAddress)
  if (header) socket.write(header)
  const secure = tls.connect({ socket, ca: dev.ca, cert: dev.cert, key: dev.key, servername: 'localhost' })
  onTestFinished(() => void secure.destroy())
  secure.on('error', () => {})
  const client = packetClient(secure)
  client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: dev.deviceId, clean: true, keepalive: 60 })
  const connack = await client.next(8000).catch((err: Error) => err)
  return { client, connack }
}

async function device(h: BrokerHarness, id: string): Promise<DeviceCredentials> {
  const dev = await pki.device(id)
  h.directory.addCertificate(id, dev.serial)
  return dev
}

describe('PROXY protocol from trusted load balancers', () => {
  it.each([
    ['v1', v1Header('203.0.113.5', 40001)],
    ['v2', v2Header('203.0.113.5', 40001)],
  ])('a %s header from a trusted proxy: the connection and the audit see the device address', async (_v, header) => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1/32'] } })
    const dev = await device(h, 'px-1')
    const { connack } = await connectThrough(h.port, dev, header)
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(h.broker.connection('px-1')).toMatchObject({ remoteAddress: '203.0.113.5' })
    // a refused connect through the proxy is audited with the header's address, too
    const unknown = await pki.device('px-unknown')
    const refused = await connectThrough(h.port, unknown, header)
    expect(refused.connack).toMatchObject({ cmd: 'connack', returnCode: 5 })
    expect(h.directory.auditsFor('connect.refused')).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ reason: 'unknown-device', remoteAddress: '203.0.113.5' }) }),
    ])
  })

  it('a header and the TLS ClientHello in one TCP segment: the bytes after the header reach TLS', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'] } })
    const dev = await device(h, 'px-joined')
    // a one-connection relay that prepends the header to the client's first bytes, in one write
    const relay = net.createServer((inbound) => {
      const outbound = net.connect({ host: '127.0.0.1', port: h.port })
      outbound.setNoDelay(true)
      let first = true
      inbound.on('data', (chunk: Buffer) => {
        outbound.write(first ? Buffer.concat([v2Header('192.0.2.44', 5000), chunk]) : chunk)
        first = false
      })
      outbound.pipe(inbound)
      for (const s of [inbound, outbound]) s.on('error', () => {})
      inbound.on('close', () => outbound.destroy())
      outbound.on('close', () => inbound.destroy())
    })
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => void relay.close())
    const { connack } = await connectThrough((relay.address() as net.AddressInfo).port, dev, null)
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(h.broker.connection('px-joined')).toMatchObject({ remoteAddress: '192.0.2.44' })
  })

  it('the client certificate is still verified behind the proxy: a self-signed one gets no session', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'] } })
    const forged = await selfSignedDevice('px-forged', pki.chain)
    h.directory.addCertificate('px-forged', forged.serial)
    const { connack } = await connectThrough(h.port, forged, v2Header('203.0.113.5', 40001))
    expect(connack).toBeInstanceOf(Error)
    expect(h.broker.isConnected('px-forged')).toBe(false)
    expect(h.directory.lookups).toHaveLength(0)
  })

  it('the per-address gate counts the addresses from the headers, not the proxy', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'] }, limits: { maxConnectionsPerIp: 1 } })
    const a = await device(h, 'px-a')
    const b = await device(h, 'px-b')
    const c = await device(h, 'px-c')
    expect((await connectThrough(h.port, a, v2Header('198.51.100.1', 1000))).connack).toMatchObject({ returnCode: 0 })
    expect((await connectThrough(h.port, b, v2Header('198.51.100.2', 1000))).connack).toMatchObject({ returnCode: 0 })
    // a second connection from 198.51.100.1 is over its limit of 1
    const third = await connectThrough(h.port, c, v1Header('198.51.100.1', 1001))
    expect(third.connack).toBeInstanceOf(Error)
    expect(h.directory.auditsFor('connection.throttled')).toEqual([
      expect.objectContaining({ subject: 'ip:198.51.100.1', details: expect.objectContaining({ reason: 'too-many-connections' }) }),
    ])
  })

  it('a trusted proxy that sends no header is refused before TLS', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'] } })
    const dev = await device(h, 'px-2')
    const { connack } = await connectThrough(h.port, dev, null)
    expect(connack).toBeInstanceOf(Error)
    expect(h.broker.isConnected('px-2')).toBe(false)
    expect(h.directory.auditsFor('connection.refused')).toEqual([
      expect.objectContaining({ subject: 'ip:127.0.0.1', details: expect.objectContaining({ reason: 'proxy-header-missing' }) }),
    ])
  })

  it('a header from an untrusted address is refused; a plain device from there still connects', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['10.0.0.0/8'] } })
    const dev = await device(h, 'px-3')
    const spoofed = await tcp(h.port)
    spoofed.socket.write(v1Header('203.0.113.9', 1234))
    await spoofed.closed
    expect(h.directory.auditsFor('connection.refused')).toEqual([
      expect.objectContaining({ subject: 'ip:127.0.0.1', details: expect.objectContaining({ reason: 'proxy-header-untrusted' }) }),
    ])
    expect((await connectThrough(h.port, dev, null)).connack).toMatchObject({ returnCode: 0 })
    expect(h.broker.connection('px-3')).toMatchObject({ remoteAddress: '127.0.0.1' })
  })

  it('a trusted proxy that never finishes its header is closed after headerTimeoutMs', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'], headerTimeoutMs: 200 } })
    const slow = await tcp(h.port)
    slow.socket.write(v2Header('203.0.113.5', 1).subarray(0, 10))
    await slow.closed
    await waitFor(() => h.directory.auditsFor('connection.refused').length === 1, 5000, 'refusal audit')
    expect(h.directory.auditsFor('connection.refused')[0]?.details).toMatchObject({ reason: 'proxy-header-timeout' })
  })

  it('a header larger than the bound is refused without waiting for more', async () => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'], headerTimeoutMs: 60_000 } })
    const big = await tcp(h.port)
    const head = Buffer.alloc(4)
    head.writeUInt8(0x21, 0)
    head.writeUInt8(0x11, 1)
    head.writeUInt16BE(60_000, 2) // declares 60 KB of TLVs
    big.socket.write(Buffer.concat([V2_SIGNATURE, head]))
    await big.closed
    expect(h.directory.auditsFor('connection.refused')[0]?.details).toMatchObject({ reason: 'proxy-header-invalid' })
  })
})

// --- HAProxy in front (Debian's haproxy 2.6), TLS passthrough -------------------------------------

const haproxyMissing = spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).error !== undefined

/**
 * A listening socket on a free loopback port, for haproxy to inherit (`bind fd@N`): it accepts from
 * the moment it exists, so connections made before haproxy has started wait in the kernel's backlog
 * instead of racing its start. Node's own copy is closed once the child has it.
 */
async function listeningSocket(): Promise<{ server: net.Server; port: number; fd: number }> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  return { server, port, fd }
}

/** haproxy on two loopback ports (send-proxy-v2, send-proxy) in front of the broker; killed at test end. */
async function startHaproxy(brokerPort: number): Promise<{ v2: number; v1: number }> {
  const dir = tempDir('gatehouse-haproxy-')
  const v2 = await listeningSocket()
  const v1 = await listeningSocket()
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend mqtt_v2',
      '  bind fd@3',
      '  default_backend gatehouse_v2',
      'backend gatehouse_v2',
      `  server broker 127.0.0.1:${brokerPort} send-proxy-v2`,
      'frontend mqtt_v1',
      '  bind fd@4',
      '  default_backend gatehouse_v1',
      'backend gatehouse_v1',
      `  server broker 127.0.0.1:${brokerPort} send-proxy`,
      '',
    ].join('\n'),
  )
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe', v2.fd, v1.fd] })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()))
  child.once('exit', (code) => {
    if (code !== null && code !== 0) console.error(`haproxy exited with ${code}: ${output}`)
  })
  onTestFinished(() => void child.kill('SIGKILL'))
  await Promise.all([v2, v1].map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))))
  return { v2: v2.port, v1: v1.port }
}

describe.skipIf(haproxyMissing)('behind Debian haproxy in TCP mode (TLS passthrough); apt-get install haproxy', () => {
  it.each([
    ['send-proxy-v2', 'v2'],
    ['send-proxy', 'v1'],
  ] as const)('haproxy %s: the device connects with mutual TLS and the broker sees its own address', async (_name, which) => {
    const h = await startBroker(pki.serverTls, { proxyProtocol: { trustedProxies: ['127.0.0.1'] } })
    const ports = await startHaproxy(h.port)
    const dev = await device(h, `hap-${which}`)
    // the device connects from 127.0.0.2, the proxy from 127.0.0.1
    const { connack } = await connectThrough(ports[which], dev, null, '127.0.0.2')
    expect(connack).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(h.broker.connection(`hap-${which}`)).toMatchObject({ remoteAddress: '127.0.0.2' })
    // the client certificate is still verified: an unknown device is refused and audited with its address
    const stranger = await pki.device(`hap-unknown-${which}`)
    expect((await connectThrough(ports[which], stranger, null, '127.0.0.2')).connack).toMatchObject({ returnCode: 5 })
    expect(h.directory.auditsFor('connect.refused')[0]?.details).toMatchObject({ remoteAddress: '127.0.0.2' })
  })
})

if (haproxyMissing)
  console.warn('proxy-protocol.test.ts: haproxy is not installed (apt-get install haproxy); the HAProxy tests are skipped')
