// A tiny DER (X.690) encoder, and a reader just big enough to walk a certificate. Pure: bytes in, bytes
// out. It exists for the hot path of device certificates (device-certificate.ts): @peculiar/x509's
// generic ASN.1 schema machinery costs milliseconds per certificate, these few functions microseconds.

export type Der = Uint8Array

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** The definite-length octets for a content of `n` bytes (short form below 128, long form above). */
export function encodeLength(n: number): Der {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`DER length out of range: ${n}`)
  if (n < 0x80) return Uint8Array.of(n)
  if (n < 0x100) return Uint8Array.of(0x81, n)
  if (n < 0x10000) return Uint8Array.of(0x82, n >>> 8, n & 0xff)
  if (n < 0x1000000) return Uint8Array.of(0x83, n >>> 16, (n >>> 8) & 0xff, n & 0xff)
  return Uint8Array.of(0x84, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

/**
 * Room for an encoding, every byte of which the caller writes. V8 gives each typed array over 64 bytes
 * its own off-heap backing store (~2 µs apiece); these come from Node's shared Buffer pool instead, as
 * plain Uint8Array views. Keep a result for long only after standalone() has copied it out of the pool.
 */
function alloc(size: number): Uint8Array {
  const b = Buffer.allocUnsafe(size)
  return new Uint8Array(b.buffer, b.byteOffset, size)
}

/** An exact-size copy that does not keep a pool slab alive: for encodings that outlive the call. */
export function standalone(bytes: Uint8Array): Uint8Array {
  return bytes.slice()
}

/** tag || length || content, the content being one byte string or several written back to back. */
export function tlv(tag: number, content: Der | readonly Der[]): Der {
  const parts = content instanceof Uint8Array ? [content] : content
  let size = 0
  for (const p of parts) size += p.length
  const len = encodeLength(size)
  const out = alloc(1 + len.length + size)
  out[0] = tag
  out.set(len, 1)
  let at = 1 + len.length
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

export function concat(parts: readonly Der[]): Der {
  let size = 0
  for (const p of parts) size += p.length
  const out = alloc(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

export const sequence = (...items: Der[]): Der => tlv(TAG.SEQUENCE, items)
export const set = (...items: Der[]): Der => tlv(TAG.SET, items)
export const NULL: Der = Uint8Array.of(TAG.NULL, 0)

export function boolean(value: boolean): Der {
  return Uint8Array.of(TAG.BOOLEAN, 1, value ? 0xff : 0x00)
}

/**
 * An INTEGER from an unsigned big-endian magnitude: leading zero bytes dropped, one 00 added when the
 * top bit is set (so the value stays positive). An empty or all-zero input is the integer 0.
 */
export function integer(magnitude: Uint8Array): Der {
  let start = 0
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++
  const body = magnitude.subarray(start)
  if (body.length === 0) return Uint8Array.of(TAG.INTEGER, 1, 0)
  if (body[0]! & 0x80) return tlv(TAG.INTEGER, [Uint8Array.of(0), body])
  return tlv(TAG.INTEGER, body)
}

/** A small non-negative INTEGER (version numbers, path lengths). */
export function smallInteger(n: number): Der {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`expected a non-negative safe integer, got ${n}`)
  const bytes: number[] = []
  do {
    bytes.unshift(n % 256)
    n = Math.floor(n / 256)
  } while (n > 0)
  return integer(Uint8Array.from(bytes))
}

/** An OBJECT IDENTIFIER from its dotted form ("1.2.840.10045.4.3.2"). */
export function oid(dotted: string): Der {
  const arcs = dotted.split('.').map((a) => {
    if (!/^(0|[1-9]\d*)$/.test(a)) throw new RangeError(`bad OID '${dotted}'`)
    return BigInt(a)
  })
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) throw new RangeError(`bad OID '${dotted}'`)
  const bytes: number[] = []
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    const groups = [Number(arc & 0x7fn)]
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80)
    bytes.push(...groups)
  }
  return tlv(TAG.OID, Uint8Array.from(bytes))
}

const utf8 = new TextEncoder()

export function utf8String(s: string): Der {
  return tlv(TAG.UTF8_STRING, utf8.encode(s))
}

/** X.680 PrintableString characters: A-Z a-z 0-9 space ' ( ) + , - . / : = ? */
export const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/

export function printableString(s: string): Der {
  if (!PRINTABLE.test(s)) throw new RangeError(`not a PrintableString: ${JSON.stringify(s)}`)
  return tlv(TAG.PRINTABLE_STRING, latin1(s))
}

export function ia5String(s: string): Der {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is 7-bit ASCII, control characters included
  if (!/^[\x00-\x7f]*$/.test(s)) throw new RangeError(`not an IA5String: ${JSON.stringify(s)}`)
  return tlv(TAG.IA5_STRING, latin1(s))
}

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

export function bitString(bytes: Uint8Array, unusedBits = 0): Der {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new RangeError(`bad unused-bits count ${unusedBits}`)
  }
  return tlv(TAG.BIT_STRING, [Uint8Array.of(unusedBits), bytes])
}

export function octetString(bytes: Uint8Array): Der {
  return tlv(TAG.OCTET_STRING, bytes)
}

/** [n] EXPLICIT: a constructed context-specific wrapper around whole encodings. */
export function explicit(n: number, ...inner: Der[]): Der {
  return tlv(0xa0 | contextNumber(n), inner)
}

/** [n] IMPLICIT on a primitive type: the content with a context-specific primitive tag. */
export function implicitPrimitive(n: number, content: Uint8Array): Der {
  return tlv(0x80 | contextNumber(n), content)
}

function contextNumber(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`context tag number out of range: ${n}`)
  return n
}

/** UTCTime YYMMDDHHMMSSZ; only for 1950 through 2049 (RFC 5280 §4.1.2.5.1). Milliseconds must be zero. */
export function utcTime(d: Date): Der {
  const y = d.getUTCFullYear()
  if (y < 1950 || y > 2049) throw new RangeError(`UTCTime covers 1950-2049, not ${y}`)
  return tlv(TAG.UTC_TIME, latin1(`${pad2(y % 100)}${timeDigits(d)}Z`))
}

/** GeneralizedTime YYYYMMDDHHMMSSZ, no fractional seconds (RFC 5280 §4.1.2.5.2). */
export function generalizedTime(d: Date): Der {
  const y = d.getUTCFullYear()
  if (y < 0 || y > 9999) throw new RangeError(`GeneralizedTime year out of range: ${y}`)
  return tlv(TAG.GENERALIZED_TIME, latin1(`${String(y).padStart(4, '0')}${timeDigits(d)}Z`))
}

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(d: Date): Der {
  return d.getUTCFullYear() <= 2049 && d.getUTCFullYear() >= 1950 ? utcTime(d) : generalizedTime(d)
}

function timeDigits(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new RangeError('invalid date')
  if (d.getUTCMilliseconds() !== 0) throw new RangeError('DER times have whole seconds: round the date first')
  return `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}`
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n)
}

/**
 * An ECDSA signature as WebCrypto returns it (IEEE P1363: r || s, each the size of the curve order) as
 * the DER Ecdsa-Sig-Value X.509 carries: SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 §2.2 / RFC 3279).
 */
export function ecdsaP1363ToDer(signature: Uint8Array): Der {
  if (signature.length === 0 || signature.length % 2 !== 0) throw new RangeError(`bad P1363 signature length ${signature.length}`)
  const half = signature.length / 2
  return sequence(integer(signature.subarray(0, half)), integer(signature.subarray(half)))
}

// ---- reading -------------------------------------------------------------------------------------

/** One element of a DER buffer: its tag and where its header, content and end are. */
export interface DerElement {
  tag: number
  /** offset of the tag byte */
  start: number
  /** offset of the first content byte */
  contentStart: number
  /** offset just past the content */
  end: number
}

/** The element starting at `offset` (single-byte tags, definite lengths: what DER allows). */
export function readElement(buf: Uint8Array, offset = 0): DerElement {
  if (offset + 2 > buf.length) throw new RangeError('DER: truncated header')
  const tag = buf[offset]!
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: multi-byte tags are not supported')
  let at = offset + 1
  let length = buf[at++]!
  if (length & 0x80) {
    const count = length & 0x7f
    if (count === 0 || count > 4) throw new RangeError('DER: indefinite or oversized length')
    if (at + count > buf.length) throw new RangeError('DER: truncated length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + buf[at++]!
  }
  const end = at + length
  if (end > buf.length) throw new RangeError('DER: content runs past the end')
  return { tag, start: offset, contentStart: at, end }
}

/** The elements directly inside a constructed element, in order. */
export function readChildren(buf: Uint8Array, parent: DerElement): DerElement[] {
  const children: DerElement[] = []
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readElement(buf, at)
    if (child.end > parent.end) throw new RangeError('DER: child runs past its parent')
    children.push(child)
    at = child.end
  }
  return children
}
