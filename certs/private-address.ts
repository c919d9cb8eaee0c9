import { BlockList, isIP } from 'node:net'

/**
 * Addresses a URL given by an app must not reach unless the operator allows it (SSRF): loopback,
 * private (RFC 1918, unique local), link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
 * "this network", multicast and broadcast, and IPv4-mapped IPv6 forms of all of them.
 */
const blocked = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 3],
] as const)
  blocked.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 127],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, prefix, 'ipv6')

/** True for an IP address (v4 or v6, brackets allowed) that is not a public unicast one. */
export function isPrivateAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  const kind = isIP(a)
  if (kind === 4) return blocked.check(a, 'ipv4')
  if (kind !== 6) return false
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a)
  if (mapped?.[1]) return blocked.check(mapped[1], 'ipv4')
  return blocked.check(a, 'ipv6')
}

/** True for a host name that names this machine whatever the resolver says (localhost and below it). */
export function isLocalHostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '')
  return h === 'localhost' || h.endsWith('.localhost')
}

/**
 * An address or an address/prefix (CIDR) within its family's bits, as an allow-list entry names one (the
 * broker's PROXY-protocol trustedProxies, the API's httpTrustProxy); null when it is neither.
 */
export function parseAddressRange(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  if (typeof entry !== 'string') return null
  const [address = '', bits, ...rest] = entry.split('/')
  const v = isIP(address)
  if (v === 0 || rest.length > 0) return null
  const max = v === 4 ? 32 : 128
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN
  if (!(prefix >= 0 && prefix <= max)) return null
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' }
}
