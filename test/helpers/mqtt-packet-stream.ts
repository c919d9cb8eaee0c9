import mqttPacket, { type Packet } from 'mqtt-packet'
import { Duplex } from 'node:stream'

/**
 * Socket-free MQTT for broker unit tests (docs/conventions.md §24, after aedes' test/helper.js): an in-memory
 * duplex pair (node:stream duplexPair is Node 22+), a raw packet client over any duplex, and the fake
 * peer certificate the authenticate hook reads.
 */

/** Two connected in-memory duplex streams: what one writes, the other reads. Destroying one ends both. */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = []
  const make = (otherIndex: number) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        const other = sides[otherIndex]
        if (other && !other.destroyed) other.push(chunk)
        cb()
      },
      final(cb) {
        sides[otherIndex]?.push(null)
        cb()
      },
      destroy(err, cb) {
        const other = sides[otherIndex]
        if (other && !other.destroyed) other.destroy()
        cb(err)
      },
    })
  sides.push(make(1), make(0))
  return [sides[0] as Duplex, sides[1] as Duplex]
}

export interface PacketClient {
  send(packet: Packet): void
  /** the next packet received (in order), or rejects on close/timeout */
  next(timeoutMs?: number): Promise<Packet>
  /** resolves when the stream closes */
  readonly closed: Promise<void>
  isClosed(): boolean
  /** every packet received so far */
  readonly received: Packet[]
  end(): void
}

/** A raw MQTT client over a duplex stream, speaking `protocolVersion` (default 4 = 3.1.1). */
export function packetClient(stream: Duplex, protocolVersion = 4): PacketClient {
  const parser = mqttPacket.parser({ protocolVersion })
  const received: Packet[] = []
  const queue: Packet[] = []
  const waiters: { resolve: (p: Packet) => void; reject: (e: Error) => void }[] = []
  let isClosed = false
  parser.on('packet', (p: Packet) => {
    received.push(p)
    const w = waiters.shift()
    if (w) w.resolve(p)
    else queue.push(p)
  })
  parser.on('error', () => stream.destroy())
  stream.on('data', (buf: Buffer) => parser.parse(buf))
  stream.on('error', () => {})
  const closed = new Promise<void>((resolve) => {
    const done = () => {
      if (isClosed) return
      isClosed = true
      for (const w of waiters.splice(0)) w.reject(new Error('stream closed'))
      resolve()
    }
    stream.once('close', done)
    stream.once('end', done)
  })
  return {
    send(packet) {
      if (!stream.destroyed) stream.write(mqttPacket.generate(packet, { protocolVersion }))
    },
    next(timeoutMs = 2000) {
      const p = queue.shift()
      if (p) return Promise.resolve(p)
      if (isClosed) return Promise.reject(new Error('stream closed'))
      return new Promise<Packet>((resolve, reject) => {
        const waiter = {
          resolve: (pk: Packet) => {
            clearTimeout(timer)
            resolve(pk)
          },
          reject: (e: Error) => {
            clearTimeout(timer)
            reject(e)
          },
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`no packet within ${timeoutMs} ms`))
        }, timeoutMs)
        waiters.push(waiter)
      })
    },
    closed,
    isClosed: () => isClosed,
    received,
    end: () => stream.destroy(),
  }
}

export interface FakePeerCertificateOptions {
  /** subject CN; an array for several CNs; null for none */
  cn: string | string[] | null
  /** hex serial, as Node prints it (uppercase) */
  serial: string
  notBefore?: Date
  notAfter?: Date
  /** ext_key_usage OIDs; default clientAuth only */
  extKeyUsage?: string[] | undefined
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** Node prints validity as "Jan  1 00:00:00 2026 GMT". */
export function nodeCertDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0')
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${d.getUTCFullYear()} GMT`
}

/**
 * The getPeerCertificate() object a TLSSocket returns, for what the broker reads; held to
 * test/contract/tls-peer.contract.ts with a real TLS socket.
 */
export function fakePeerCertificate(o: FakePeerCertificateOptions) {
  const fingerprintBytes = Buffer.alloc(32, o.serial.length)
  Buffer.from(o.serial.padStart(64, '0').slice(-64), 'hex').copy(fingerprintBytes)
  return {
    raw: Buffer.from(`fake-der-${o.serial}`),
    subject: o.cn === null ? {} : { CN: o.cn },
    serialNumber: o.serial.toUpperCase(),
    fingerprint256: [...fingerprintBytes].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':'),
    valid_from: nodeCertDate(o.notBefore ?? new Date('2025-12-01T00:00:00Z')),
    valid_to: nodeCertDate(o.notAfter ?? new Date('2026-12-01T00:00:00Z')),
    ext_key_usage: o.extKeyUsage ?? [CLIENT_AUTH_OID],
  }
}

/** Makes a duplex look like an authorized TLSSocket to the authenticate hook. */
export function asTlsPeer(conn: Duplex, peer: ReturnType<typeof fakePeerCertificate> | null, remoteAddress = '192.0.2.10'): Duplex {
  Object.assign(conn, {
    authorized: peer !== null,
    remoteAddress,
    getPeerCertificate: () => peer ?? {},
  })
  return conn
}

export const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2'
export const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1'
