import { describe, expect, it } from 'vitest'
import { MAX_PROXY_HEADER_BYTES, parseProxyHeader, resolveProxyProtocol, trustedProxyMatcher } from '../../../broker/proxy-protocol.ts'
import { loadConfig } from '../../../config.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

function v2(verCmd: number, fam: number, body: Buffer): Buffer {
  const head = Buffer.from([verCmd, fam, 0, 0])
  head.writeUInt16BE(body.length, 2)
  return Buffer.concat([SIG, head, body])
}

describe('parseProxyHeader', () => {
  it.each([
    [
      'v1 TCP4',
      Buffer.from('PROXY TCP4 203.0.113.5 10.0.0.1 40001 8883\r\nTLS'),
      { address: '203.0.113.5', port: 40001 },
      'PROXY TCP4 203.0.113.5 10.0.0.1 40001 8883\r\n'.length,
    ],
    [
      'v1 TCP6',
      Buffer.from('PROXY TCP6 2001:db8::5 2001:db8::1 40001 8883\r\n'),
      { address: '2001:db8::5', port: 40001 },
      'PROXY TCP6 2001:db8::5 2001:db8::1 40001 8883\r\n'.length,
    ],
    ['v1 UNKNOWN (health check)', Buffer.from('PROXY UNKNOWN\r\n'), null, 15],
  ])('%s', (_name, buf, source, length) => {
    expect(parseProxyHeader(buf)).toEqual({ kind: 'header', source, length })
  })

  it('v2 TCP4, TCP6 with TLVs, and LOCAL', () => {
    const ipv4 = Buffer.from([198, 51, 100, 7, 10, 0, 0, 1, 0x9c, 0x41, 0x22, 0xb3])
    expect(parseProxyHeader(Buffer.concat([v2(0x21, 0x11, ipv4), Buffer.from([0x16])]))).toEqual({
      kind: 'header',
      source: { address: '198.51.100.7', port: 40001 },
      length: 28,
    })
    const ipv6 = Buffer.alloc(36 + 8) // + an AWS-style TLV
    Buffer.from('20010db8000000000000000000000005', 'hex').copy(ipv6, 0)
    ipv6.writeUInt16BE(40001, 32)
    expect(parseProxyHeader(v2(0x21, 0x21, ipv6))).toMatchObject({ kind: 'header', source: { address: '2001:db8::5', port: 40001 } })
    expect(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0)))).toEqual({ kind: 'header', source: null, length: 16 })
  })

  it.each([
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01]), 'not-proxy'],
    ['part of a v2 signature', SIG.subarray(0, 5), 'incomplete'],
    ['part of a v1 line', Buffer.from('PROXY TCP4 1.2.3'), 'incomplete'],
    ['fail/v1 without CRLF past 107 bytes', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), 'invalid'],
    ['fail/v1 bad address', Buffer.from('PROXY TCP4 999.1.1.1 10.0.0.1 1 2\r\n'), 'invalid'],
    ['fail/v1 bad port', Buffer.from('PROXY TCP4 1.1.1.1 10.0.0.1 70000 2\r\n'), 'invalid'],
    ['fail/v2 wrong version', v2(0x11, 0x11, Buffer.alloc(12)), 'invalid'],
    ['fail/v2 longer than the bound', v2(0x21, 0x11, Buffer.alloc(MAX_PROXY_HEADER_BYTES)), 'invalid'],
    ['fail/v2 TCP4 too short', v2(0x21, 0x11, Buffer.alloc(4)), 'invalid'],
  ])('%s', (_name, buf, kind) => {
    expect(parseProxyHeader(buf).kind).toBe(kind)
  })
})

describe('trusted proxies', () => {
  it('match addresses and CIDR ranges, IPv4-mapped IPv6 included', () => {
    const trusted = trustedProxyMatcher(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32'])
    expect(['10.1.2.3', '::ffff:10.1.2.3', '127.0.0.1', '2001:db8::9'].map(trusted)).toEqual([true, true, true, true])
    expect(['11.0.0.1', '127.0.0.2', '2001:db9::1', 'unknown'].map(trusted)).toEqual([false, false, false, false])
  })

  it.each([
    ['fail/not an address', { trustedProxies: ['lb.example.com'] }],
    ['fail/prefix too long', { trustedProxies: ['10.0.0.0/33'] }],
    ['fail/timeout zero', { trustedProxies: [], headerTimeoutMs: 0 }],
  ])('%s: GH_BROKER_OPTION_INVALID', (_name, input) => {
    expect(() => resolveProxyProtocol(input)).toThrow(expect.objectContaining({ code: 'GH_BROKER_OPTION_INVALID' }))
  })

  it('config: from GATEHOUSE_PROXY_PROTOCOL_TRUSTED_PROXIES; a bad range stops start-up with GH_CONFIG_INVALID', () => {
    const dataDir = tempDir()
    const config = loadConfig({ dataDir }, { GATEHOUSE_PROXY_PROTOCOL_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1' })
    expect(config.proxyProtocol).toEqual({ trustedProxies: ['10.0.0.0/8', '127.0.0.1'], headerTimeoutMs: 5000 })
    expect(() => loadConfig({ dataDir }, { GATEHOUSE_PROXY_PROTOCOL_TRUSTED_PROXIES: '10.0.0.0/40' })).toThrow(
      expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringMatching(/10\.0\.0\.0\/40/) }),
    )
  })
})
