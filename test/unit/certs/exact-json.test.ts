import { describe, expect, it } from 'vitest'
import { unsafeInteger } from '../../../certs/index.ts'

describe('unsafeInteger: integers JSON.parse would round (issue 17)', () => {
  it('finds the first integer beyond ±(2^53 - 1), with its dotted path, its literal and what JSON.parse makes of it', () => {
    expect(unsafeInteger('{"x": 9007199254740993}')).toEqual({ path: 'x', literal: '9007199254740993', parsed: 9007199254740992 })
    expect(unsafeInteger('{"a": {"b": [1, 2, -9007199254740992]}}')).toMatchObject({ path: 'a.b.2', literal: '-9007199254740992' })
    expect(unsafeInteger('[0, {"k\\"ey": 123456789012345678901234567890}]')).toMatchObject({ path: '1.k"ey' })
    expect(unsafeInteger('12345678901234567890')).toMatchObject({ path: '(value)' })
    // a key after a string value that holds a colon and digits: paths follow keys, not string contents
    expect(unsafeInteger('{"s": "a: 1234567890123456789", "n": {"m": 99999999999999999}}')).toMatchObject({ path: 'n.m' })
  })

  it('accepts safe integers, fractions, exponents and long digit runs inside strings', () => {
    for (const text of [
      '{"x": 9007199254740991, "y": -9007199254740991}',
      '{"x": 0.12345678901234567890}',
      '{"x": 9007199254740993.5, "y": 1e300, "z": 12345678901234567e2}',
      '{"id": "12345678901234567890123"}',
      '{"12345678901234567890": 1}',
    ])
      expect(unsafeInteger(text), text).toBeUndefined()
  })

  it('caps what it reports: a 10,000-digit integer is named in 64 characters', () => {
    const found = unsafeInteger(`{"x": ${'9'.repeat(10_000)}}`)
    expect(found?.literal.length).toBeLessThan(100)
    expect(found?.parsed).toBe(Number.POSITIVE_INFINITY)
  })
})
