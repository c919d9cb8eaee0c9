import net from 'node:net'
import { deepFreeze, type FromSchema, parseAddressRange } from '../certs/index.ts'
import { BrokerOptionInvalid } from './errors.ts'
import { optionsValidator } from './option-schemas.ts'

/**
 * The PROXY protocol (v1 text and v2 binary, haproxy.org/download/2.6/doc/proxy-protocol.txt) on the
 * MQTT listener, for a load balancer in TCP mode with TLS passthrough (docs/deployment.md).
 *
 * The header is read from the raw TCP connection before TLS: a connection from a trusted proxy must
 * start with one (else it is refused), a connection from anywhere else must not (a device cannot
 * claim an address). The bytes after the header are put back (socket.unshift) and create-broker.ts
 * hands the socket to the TLS server as usual, so client-certificate verification is unchanged.
 */
export const PROXY_PROTOCOL_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** addresses or CIDR ranges of the load balancers (IPv4 or IPv6), each parsed by resolveProxyProtocol(); [] = PROXY protocol off */
    trustedProxies: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 }, maxItems: 256, default: [] },
    /** TCP accept -> complete header, ms */
    headerTimeoutMs: { type: 'integer', minimum: 1, maximum: 60_000, default: 5000 },
  },
} as const

export type ProxyProtocolOptions = FromSchema<typeof PROXY_PROTOCOL_SCHEMA>
export type ProxyProtocolInput = FromSchema<typeof PROXY_PROTOCOL_SCHEMA, 'input'>

const validate = optionsValidator<ProxyProtocolOptions>(
  PROXY_PROTOCOL_SCHEMA,
  'proxyProtocol',
  (problems) => new BrokerOptionInvalid('proxyProtocol', problems),
)

/** v1 is at most 107 bytes; v2 is 16 + its length. AWS NLB / GCP TLVs fit well within 1 KiB. */
export const MAX_PROXY_HEADER_BYTES = 1024
const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
const V1_PREFIX = Buffer.from('PROXY ')
const V1_MAX = 107

/** Defaults < input; GH_BROKER_OPTION_INVALID lists every problem. The input is not modified. */
export function resolveProxyProtocol(input: ProxyProtocolInput = {}): Readonly<ProxyProtocolOptions> {
  return deepFreeze(checkProxyProtocol(validate(input)))
}

/**
 * What JSON Schema cannot say, over options PROXY_PROTOCOL_SCHEMA has already checked and filled
 * (resolveProxyProtocol, or the configuration's one validation, config.ts): GH_BROKER_OPTION_INVALID.
 */
export function checkProxyProtocol(o: ProxyProtocolOptions): ProxyProtocolOptions {
  // an address range is more than JSON Schema can say: parsed here, as trustedProxyMatcher() does
  const problems = o.trustedProxies
    .filter((entry) => parseAddressRange(entry) === null)
    .map((entry) => `trustedProxies: '${entry.slice(0, 64)}' is not an IP address or CIDR range`)
  if (problems.length > 0) throw new BrokerOptionInvalid('proxyProtocol', problems.join('; '))
  return o
}

/** IPv4-mapped IPv6 (::ffff:10.0.0.1, as a dual-stack listener reports it) as plain IPv4. */
export function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return m?.[1] ?? address
}

export function trustedProxyMatcher(trustedProxies: readonly string[]): (address: string) => boolean {
  const list = new net.BlockList()
  for (const entry of trustedProxies) {
    const r = parseAddressRange(entry)
    if (r) list.addSubnet(r.address, r.prefix, r.family)
  }
  return (address) => {
    const a = normalizeAddress(address)
    const v = net.isIP(a)
    return v !== 0 && list.check(a, v === 4 ? 'ipv4' : 'ipv6')
  }
}

/** The source the header names; null for v2 LOCAL / v1 UNKNOWN (the proxy's own health checks). */
export type ProxySource = { address: string; port: number } | null

export type ProxyHeaderResult =
  | { ok: true; source: ProxySource }
  | { ok: false; reason: 'proxy-header-missing' | 'proxy-header-invalid' | 'proxy-header-timeout' | 'proxy-header-untrusted' | 'closed' }

/**
 * Reads a PROXY header from a fresh socket (trusted: required) or checks that none is sent
 * (untrusted: a first byte that starts one is refused; a TLS ClientHello starts with 0x16).
 * The bytes read past the header are unshifted back and the socket is left paused.
 */
export function readProxyHeader(socket: net.Socket, trusted: boolean, timeoutMs: number): Promise<ProxyHeaderResult> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0)
    const finish = (result: ProxyHeaderResult, rest: Buffer | null): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.pause()
      if (rest !== null && rest.length > 0) socket.unshift(rest)
      resolve(result)
    }
    const onClose = () => finish({ ok: false, reason: 'closed' }, null)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const parsed = parseProxyHeader(buffered)
      if (!trusted) {
        if (parsed.kind === 'not-proxy') return finish({ ok: true, source: null }, buffered)
        return finish({ ok: false, reason: 'proxy-header-untrusted' }, null)
      }
      if (parsed.kind === 'incomplete') {
        if (buffered.length >= MAX_PROXY_HEADER_BYTES) finish({ ok: false, reason: 'proxy-header-invalid' }, null)
        return
      }
      if (parsed.kind === 'not-proxy') return finish({ ok: false, reason: 'proxy-header-missing' }, null)
      if (parsed.kind === 'invalid') return finish({ ok: false, reason: 'proxy-header-invalid' }, null)
      finish({ ok: true, source: parsed.source }, buffered.subarray(parsed.length))
    }
    const timer = setTimeout(() => finish({ ok: false, reason: trusted ? 'proxy-header-timeout' : 'closed' }, null), timeoutMs)
    socket.on('data', onData)
    socket.once('close', onClose)
  })
}

export type ParsedHeader =
  | { kind: 'header'; source: ProxySource; length: number }
  | { kind: 'incomplete' }
  | { kind: 'not-proxy' }
  | { kind: 'invalid' }

/** Parses a PROXY v1 or v2 header at the start of `buf` (pure; see readProxyHeader). */
export function parseProxyHeader(buf: Buffer): ParsedHeader {
  const v2 = startsWith(buf, V2_SIGNATURE)
  const v1 = startsWith(buf, V1_PREFIX)
  if (v2 === 'no' && v1 === 'no') return { kind: 'not-proxy' }
  if (v2 === 'partial' || v1 === 'partial') return { kind: 'incomplete' }
  return v2 === 'yes' ? parseV2(buf) : parseV1(buf)
}

function startsWith(buf: Buffer, prefix: Buffer): 'yes' | 'partial' | 'no' {
  const n = Math.min(buf.length, prefix.length)
  if (!buf.subarray(0, n).equals(prefix.subarray(0, n))) return 'no'
  return n === prefix.length ? 'yes' : 'partial'
}

function parseV1(buf: Buffer): ParsedHeader {
  const end = buf.indexOf('\r\n')
  if (end === -1) return buf.length >= V1_MAX ? { kind: 'invalid' } : { kind: 'incomplete' }
  if (end + 2 > V1_MAX) return { kind: 'invalid' }
  const parts = buf.subarray(0, end).toString('latin1').split(' ')
  if (parts[1] === 'UNKNOWN') return { kind: 'header', source: null, length: end + 2 }
  if (parts.length !== 6) return { kind: 'invalid' }
  const [, proto, src = '', , sport = ''] = parts
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0
  const port = /^\d{1,5}$/.test(sport) ? Number(sport) : -1
  if (family === 0 || net.isIP(src) !== family || port < 0 || port > 65_535) return { kind: 'invalid' }
  return { kind: 'header', source: { address: src, port }, length: end + 2 }
}

function parseV2(buf: Buffer): ParsedHeader {
  if (buf.length < 16) return { kind: 'incomplete' }
  const verCmd = buf.readUInt8(12)
  const fam = buf.readUInt8(13)
  const length = 16 + buf.readUInt16BE(14)
  if (verCmd >> 4 !== 2 || length > MAX_PROXY_HEADER_BYTES) return { kind: 'invalid' }
  if (buf.length < length) return { kind: 'incomplete' }
  const command = verCmd & 0x0f
  if (command === 0x0) return { kind: 'header', source: null, length } // LOCAL
  if (command !== 0x1) return { kind: 'invalid' }
  const body = buf.subarray(16, length)
  if (fam === 0x11 && body.length >= 12) {
    return { kind: 'header', source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) }, length }
  }
  if (fam === 0x21 && body.length >= 36) {
    const groups: string[] = []
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16))
    return { kind: 'header', source: { address: compressIpv6(groups.join(':')), port: body.readUInt16BE(32) }, length }
  }
  // UNSPEC or a unix socket: no usable address; the connection keeps the proxy's
  if ((fam & 0xf0) === 0x00 || (fam & 0xf0) === 0x30) return { kind: 'header', source: null, length }
  return { kind: 'invalid' }
}

/** The canonical text form of an IPv6 address (as Node's remoteAddress shows it). */
function compressIpv6(full: string): string {
  const url = new URL(`http://[${full}]/`)
  return url.hostname.slice(1, -1)
}
