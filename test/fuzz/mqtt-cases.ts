import mqttPacket, { type Packet } from 'mqtt-packet'
import { seededRandom } from '../helpers/random.ts'

/**
 * Seeded MQTT fuzz cases (issue 17, "Bad input"): packets built with mqtt-packet's own generator, then
 * mutated at the byte level. Case i of seed s depends on (s, i) only, so any case is reproduced alone.
 */

/** 'pre': the bytes are the first thing sent on an authenticated TLS connection; 'post': after CONNACK 0. */
export type FuzzPhase = 'pre' | 'post'

export interface FuzzCase {
  /** `${seed}/${index}`, or the regression file's name */
  id: string
  /** the device it connects as */
  deviceId: string
  phase: FuzzPhase
  /** the packet template and the mutation, for the report */
  kind: string
  bytes: Buffer
}

interface Rng {
  int(n: number): number
  pick<T>(items: readonly T[]): T
  chance(p: number): boolean
  bytes(n: number): Buffer
}

function rng(seed: number): Rng {
  const r = seededRandom(seed)
  const u32 = () => new DataView(r.bytes(4).buffer).getUint32(0)
  return {
    int: (n) => (n <= 0 ? 0 : u32() % n),
    pick: (items) => items[u32() % items.length] as (typeof items)[number],
    chance: (p) => u32() / 2 ** 32 < p,
    bytes: (n) => Buffer.from(r.bytes(n)),
  }
}

/** Topic strings a device might send: its own, another device's, wildcards, empty, NUL, huge. */
function topic(g: Rng, deviceId: string): string {
  return g.pick([
    `devices/${deviceId}/telemetry`,
    `devices/${deviceId}/telemetry/x/y`,
    `devices/${deviceId}/settings/reported`,
    `devices/${deviceId}/renewal/request`,
    `devices/other/settings`,
    '#',
    '+',
    'devices/+/telemetry',
    `devices/${deviceId}/#`,
    `devices/${deviceId}/te#st`,
    `devices/${deviceId}/+x`,
    '$SYS/broker/uptime',
    '',
    '/',
    `devices/${deviceId}/telemetry\u0000x`,
    `devices/${deviceId}/${'a'.repeat(g.int(70_000))}`,
    'provisioning/abc/request',
  ])
}

function payload(g: Rng): Buffer {
  return g.pick([
    () => Buffer.alloc(0),
    () => Buffer.from('{"t":21.5}'),
    () => Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    () => g.bytes(g.int(2048)),
    () => Buffer.alloc(g.int(200_000), 0x41),
  ])()
}

const MQTT5_PROPERTIES = {
  userProperties: { a: 'b' },
  contentType: 'application/json',
  topicAlias: 7,
  messageExpiryInterval: 5,
  subscriptionIdentifier: 3,
}

/** A packet object for mqtt-packet's generator, and the protocol version to encode it with. */
function template(g: Rng, deviceId: string): { name: string; packet: Packet; version: 4 | 5 } {
  const messageId = g.pick([0, 1, 65_535, g.int(65_536)])
  const qos = g.pick([0, 1, 2] as const)
  const choices: (() => { name: string; packet: Packet; version: 4 | 5 })[] = [
    () => ({
      name: 'connect',
      version: 4,
      packet: {
        cmd: 'connect',
        protocolId: g.pick(['MQTT', 'MQIsdp', 'MQTX']) as 'MQTT',
        protocolVersion: g.pick([3, 4, 4, 5, 0, 255]) as 4,
        clientId: g.pick([deviceId, '', 'other-device', 'x'.repeat(g.int(70_000))]),
        clean: g.chance(0.5),
        keepalive: g.pick([0, 1, 60, 65_535]),
        ...(g.chance(0.3) ? { username: g.pick(['', 'u', 'x'.repeat(1000)]), password: g.bytes(g.int(64)) } : {}),
        ...(g.chance(0.3) ? { will: { topic: topic(g, deviceId), payload: payload(g), qos, retain: g.chance(0.5) } } : {}),
      },
    }),
    () => ({
      name: 'publish',
      version: 4,
      packet: { cmd: 'publish', topic: topic(g, deviceId), payload: payload(g), qos, retain: g.chance(0.2), dup: g.chance(0.2), messageId },
    }),
    () => ({
      name: 'subscribe',
      version: 4,
      packet: {
        cmd: 'subscribe',
        messageId,
        subscriptions: Array.from({ length: 1 + g.int(4) }, () => ({ topic: topic(g, deviceId), qos: g.pick([0, 1, 2] as const) })),
      },
    }),
    () => ({
      name: 'unsubscribe',
      version: 4,
      packet: { cmd: 'unsubscribe', messageId, unsubscriptions: Array.from({ length: 1 + g.int(3) }, () => topic(g, deviceId)) },
    }),
    () => ({ name: 'ack', version: 4, packet: { cmd: g.pick(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), messageId } }),
    () => ({ name: 'pingreq', version: 4, packet: { cmd: 'pingreq' } }),
    () => ({ name: 'disconnect', version: 4, packet: { cmd: 'disconnect' } }),
    () => ({
      name: 'server-packet',
      version: 4,
      packet: g.pick<Packet>([
        { cmd: 'connack', returnCode: 0, sessionPresent: false },
        { cmd: 'suback', messageId: 1, granted: [0] },
        { cmd: 'pingresp' },
        { cmd: 'unsuback', messageId: 1, granted: [] },
      ]),
    }),
    () => ({
      name: 'mqtt5-publish',
      version: 5,
      packet: {
        cmd: 'publish',
        topic: topic(g, deviceId),
        payload: payload(g),
        qos,
        retain: false,
        dup: false,
        messageId,
        properties: MQTT5_PROPERTIES,
      },
    }),
    () => ({
      name: 'mqtt5-connect',
      version: 5,
      packet: {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: deviceId,
        clean: true,
        keepalive: 60,
        properties: { sessionExpiryInterval: 4_294_967_295, receiveMaximum: 1, maximumPacketSize: 10, userProperties: { k: 'v' } },
      },
    }),
    () => ({
      name: 'mqtt5-subscribe',
      version: 5,
      packet: {
        cmd: 'subscribe',
        messageId: messageId || 1,
        subscriptions: [{ topic: topic(g, deviceId), qos: 1, nl: true, rap: true, rh: 2 }],
        properties: { subscriptionIdentifier: 9, userProperties: { k: 'v' } },
      },
    }),
  ]
  return g.pick(choices)()
}

/** The offset just past the fixed header (type byte + remaining-length varint), or the length when cut. */
function headerEnd(bytes: Buffer): number {
  let i = 1
  while (i < bytes.length && i < 5 && ((bytes[i] ?? 0) & 0x80) !== 0) i++
  return Math.min(i + 1, bytes.length)
}

function varint(n: number): Buffer {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0 && out.length < 4)
  return Buffer.from(out)
}

const INVALID_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
]

/** Byte-level mutations of one generated packet. */
const MUTATIONS: Record<string, (g: Rng, b: Buffer) => Buffer> = {
  none: (_g, b) => b,
  truncate: (g, b) => b.subarray(0, g.int(b.length)),
  'lying-length': (g, b) => {
    const claimed = g.pick([0, 1, 127, 128, 16_383, 2_097_151, 268_435_455, g.int(1 << 20)])
    return Buffer.concat([b.subarray(0, 1), varint(claimed), b.subarray(headerEnd(b))])
  },
  'overlong-length': (_g, b) => Buffer.concat([b.subarray(0, 1), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]), b.subarray(headerEnd(b))]),
  'reserved-flags': (g, b) => Buffer.concat([Buffer.from([((b[0] ?? 0) & 0xf0) | (1 + g.int(15))]), b.subarray(1)]),
  'qos-3': (_g, b) => Buffer.concat([Buffer.from([(b[0] ?? 0) | 0x06]), b.subarray(1)]),
  'reserved-type': (g, b) => Buffer.concat([Buffer.from([g.pick([0x00, 0xf0]) | ((b[0] ?? 0) & 0x0f)]), b.subarray(1)]),
  'bit-flips': (g, b) => {
    const out = Buffer.from(b)
    for (let n = 1 + g.int(6); n > 0 && out.length > 0; n--) {
      const at = g.int(out.length)
      out[at] = (out[at] ?? 0) ^ (1 << g.int(8))
    }
    return out
  },
  'invalid-utf8': (g, b) => {
    // the first string after the fixed header is the topic (PUBLISH), the protocol name (CONNECT) or a filter after the id
    const at = headerEnd(b) + g.pick([2, 4])
    const bad = g.pick(INVALID_UTF8)
    if (at + bad.length > b.length) return b
    const out = Buffer.from(b)
    bad.copy(out, at)
    return out
  },
  'string-length-lies': (g, b) => {
    const at = headerEnd(b) + g.pick([0, 2])
    if (at + 2 > b.length) return b
    const out = Buffer.from(b)
    out.writeUInt16BE(g.pick([0, 1, 65_535]), at)
    return out
  },
  'random-bytes': (g) => g.bytes(1 + g.int(512)),
  'two-packets': (g, b) => Buffer.concat([b, g.bytes(g.int(64)), b]),
}

/** Fuzz case `index` of `seed` for a device id: both phases, every template and mutation in proportion. */
export function fuzzCase(seed: number, index: number, deviceId: string): FuzzCase {
  const g = rng((Math.imul(seed, 1_000_003) + index * 7919 + 1) >>> 0)
  const phase: FuzzPhase = g.chance(0.5) ? 'pre' : 'post'
  const t = template(g, deviceId)
  const mutation = g.pick(Object.keys(MUTATIONS))
  let encoded: Buffer
  try {
    encoded = mqttPacket.generate(t.packet, { protocolVersion: t.version })
  } catch {
    // the generator refuses some field values (a 70 000-character string): send its raw bytes instead
    encoded = g.bytes(1 + g.int(256))
  }
  const bytes = (MUTATIONS[mutation] as (g: Rng, b: Buffer) => Buffer)(g, encoded)
  return { id: `${seed}/${index}`, deviceId, phase, kind: `${t.name}+${mutation}`, bytes }
}

/** The well-formed CONNECT of the 'post' phase, and a PINGREQ marker. */
export function goodConnect(deviceId: string): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: deviceId, clean: true, keepalive: 60 })
}
export const PINGREQ = Buffer.from([0xc0, 0x00])
