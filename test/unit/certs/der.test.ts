import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  NULL,
  bitString,
  boolean,
  ecdsaP1363ToDer,
  encodeLength,
  explicit,
  generalizedTime,
  ia5String,
  implicitPrimitive,
  integer,
  octetString,
  oid,
  printableString,
  readChildren,
  readElement,
  sequence,
  set,
  smallInteger,
  standalone,
  time,
  tlv,
  utcTime,
  utf8String,
} from '../../../certs/der.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'))
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex')

describe('DER lengths and TLV', () => {
  it.each([
    [0, '00'],
    [127, '7f'],
    [128, '8180'],
    [255, '81ff'],
    [256, '820100'],
    [65535, '82ffff'],
    [65536, '83010000'],
    [16777216, '8401000000'],
  ])('encodes the length %i as %s', (n, expected) => {
    expect(hex(encodeLength(n))).toBe(expected)
  })

  it('refuses a negative or fractional length', () => {
    expect(() => encodeLength(-1)).toThrow(RangeError)
    expect(() => encodeLength(1.5)).toThrow(RangeError)
  })

  it('writes tag, length and the parts back to back, in long form past 127 bytes', () => {
    expect(hex(tlv(0x04, [bytes('0102'), bytes('03')]))).toBe('0403010203')
    const big = tlv(0x04, new Uint8Array(300).fill(0xab))
    expect(hex(big.subarray(0, 4))).toBe('0482012c')
    expect(big.length).toBe(304)
  })

  it('encodes empty and nested SEQUENCE and SET', () => {
    expect(hex(sequence())).toBe('3000')
    expect(hex(set(sequence(), NULL))).toBe('310430000500')
  })

  it('copies a result out of the shared pool with standalone()', () => {
    const s = standalone(octetString(bytes('ff')))
    expect(hex(s)).toBe('0401ff')
    expect(s.byteOffset).toBe(0)
    expect(s.buffer.byteLength).toBe(3)
  })
})

describe('DER primitives', () => {
  it.each([
    ['', '020100'],
    ['00', '020100'],
    ['0000', '020100'],
    ['01', '020101'],
    ['7f', '02017f'],
    ['80', '02020080'],
    ['0080', '02020080'],
    ['000001', '020101'],
    ['ff01', '020300ff01'],
    ['7fffffffffffffffffffffffffffffff', '02107fffffffffffffffffffffffffffffff'],
  ])('INTEGER from the magnitude %j is %s', (magnitude, expected) => {
    expect(hex(integer(bytes(magnitude)))).toBe(expected)
  })

  it.each([
    [0, '020100'],
    [2, '020102'],
    [127, '02017f'],
    [128, '02020080'],
    [256, '02020100'],
  ])('INTEGER %i is %s', (n, expected) => {
    expect(hex(smallInteger(n))).toBe(expected)
  })

  it.each([
    ['2.5.4.3', '0603550403'],
    ['1.2.840.10045.2.1', '06072a8648ce3d0201'],
    ['1.2.840.10045.4.3.2', '06082a8648ce3d040302'],
    ['1.2.840.113549.1.1.11', '06092a864886f70d01010b'],
    ['1.3.132.0.34', '06052b81040022'],
    ['1.3.6.1.5.5.7.3.2', '06082b06010505070302'],
    ['2.999.3', '0603883703'], // X.690 §8.19.5 example
  ])('OID %s is %s', (dotted, expected) => {
    expect(hex(oid(dotted))).toBe(expected)
  })

  it.each([['1'], ['3.1'], ['1.40'], ['1.2.a'], ['1..2'], ['1.02']])('refuses the OID %j', (dotted) => {
    expect(() => oid(dotted)).toThrow(RangeError)
  })

  it('encodes the string types, and refuses characters a type cannot hold', () => {
    expect(hex(utf8String('é_1'))).toBe('0c04c3a95f31')
    expect(hex(printableString("Ab 1'()+,-./:=?"))).toBe(`130f${ascii("Ab 1'()+,-./:=?")}`)
    expect(hex(ia5String('urn:x'))).toBe(`1605${ascii('urn:x')}`)
    expect(() => printableString('a_b')).toThrow(RangeError)
    expect(() => printableString('a*b')).toThrow(RangeError)
    expect(() => ia5String('é')).toThrow(RangeError)
  })

  it('encodes BIT STRING, OCTET STRING, BOOLEAN and NULL', () => {
    expect(hex(bitString(bytes('80'), 7))).toBe('03020780')
    expect(hex(bitString(bytes('a0'), 5))).toBe('030205a0')
    expect(hex(bitString(new Uint8Array()))).toBe('030100')
    expect(() => bitString(bytes('80'), 8)).toThrow(RangeError)
    expect(hex(octetString(bytes('0102')))).toBe('04020102')
    expect(hex(boolean(true))).toBe('0101ff')
    expect(hex(boolean(false))).toBe('010100')
    expect(hex(NULL)).toBe('0500')
  })

  it('encodes EXPLICIT and IMPLICIT context-specific tags', () => {
    expect(hex(explicit(0, smallInteger(2)))).toBe('a003020102')
    expect(hex(explicit(3, sequence()))).toBe('a3023000')
    expect(hex(implicitPrimitive(6, bytes('61')))).toBe('860161')
    expect(hex(implicitPrimitive(0, bytes('0102')))).toBe('80020102')
    expect(() => explicit(31, NULL)).toThrow(RangeError)
  })
})

describe('DER times (RFC 5280 §4.1.2.5)', () => {
  it('writes UTCTime as YYMMDDHHMMSSZ', () => {
    expect(hex(utcTime(new Date('2026-01-02T03:04:05Z')))).toBe(`170d${ascii('260102030405Z')}`)
    expect(hex(utcTime(new Date('1950-01-01T00:00:00Z')))).toBe(`170d${ascii('500101000000Z')}`)
  })

  it('writes GeneralizedTime as YYYYMMDDHHMMSSZ', () => {
    expect(hex(generalizedTime(new Date('2050-01-01T00:00:00Z')))).toBe(`180f${ascii('20500101000000Z')}`)
  })

  it.each([
    ['1949-12-31T23:59:59Z', `180f${ascii('19491231235959Z')}`],
    ['1950-01-01T00:00:00Z', `170d${ascii('500101000000Z')}`],
    ['2049-12-31T23:59:59Z', `170d${ascii('491231235959Z')}`],
    ['2050-01-01T00:00:00Z', `180f${ascii('20500101000000Z')}`],
  ])('chooses UTCTime only for 1950 through 2049: %s', (iso, expected) => {
    expect(hex(time(new Date(iso)))).toBe(expected)
  })

  it('refuses UTCTime outside 1950-2049, fractional seconds and invalid dates', () => {
    expect(() => utcTime(new Date('2050-01-01T00:00:00Z'))).toThrow(RangeError)
    expect(() => time(new Date('2026-01-01T00:00:00.500Z'))).toThrow(RangeError)
    expect(() => time(new Date(Number.NaN))).toThrow(RangeError)
  })
})

describe('ECDSA signatures: IEEE P1363 to DER', () => {
  it('writes r and s as minimal positive INTEGERs', () => {
    const r = `${'00'.repeat(31)}01`
    const s = `80${'00'.repeat(31)}`
    expect(hex(ecdsaP1363ToDer(bytes(r + s)))).toBe(`3026020101022100${s}`)
  })

  it.each([
    ['P-256', 'sha256'],
    ['P-384', 'sha384'],
  ])('gives the DER signature OpenSSL verifies (%s, many signatures)', (namedCurve, hash) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve })
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`)
      const p1363 = sign(hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' })
      expect(verify(hash, data, { key: publicKey, dsaEncoding: 'der' }, ecdsaP1363ToDer(p1363))).toBe(true)
    }
  })

  it('refuses an odd or empty signature', () => {
    expect(() => ecdsaP1363ToDer(new Uint8Array(63))).toThrow(RangeError)
    expect(() => ecdsaP1363ToDer(new Uint8Array())).toThrow(RangeError)
  })
})

describe('reading DER', () => {
  it('walks a constructed element and its children, long-form lengths included', () => {
    const inner = octetString(new Uint8Array(300))
    const buf = sequence(smallInteger(5), inner, NULL)
    const top = readElement(buf)
    expect(top).toEqual({ tag: 0x30, start: 0, contentStart: 4, end: buf.length })
    const children = readChildren(buf, top)
    expect(children.map((c) => c.tag)).toEqual([0x02, 0x04, 0x05])
    expect(hex(buf.subarray(children[1]!.start, children[1]!.end))).toBe(hex(inner))
    expect(children[1]!.contentStart - children[1]!.start).toBe(4)
  })

  it('refuses truncated or indefinite encodings', () => {
    expect(() => readElement(bytes('30'))).toThrow(RangeError)
    expect(() => readElement(bytes('3005020101'))).toThrow(RangeError)
    expect(() => readElement(bytes('3080'))).toThrow(RangeError)
    expect(() => readElement(bytes('1f0100'))).toThrow(RangeError)
  })
})
