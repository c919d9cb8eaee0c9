import { describe, expect, it } from 'vitest'
import { DEVICE_ID_PATTERN_SOURCE, assertDeviceId, isDeviceId } from '../../../certs/index.ts'
import { DEVICE_ID_PATTERN } from '../../../certs/device-id.ts'

describe('device id', () => {
  it.each([
    ['ok/simple', 'dev-1'],
    ['ok/letters-digits', 'Pump42'],
    ['ok/underscore-dot', 'site_3.pump.7'],
    ['ok/one-char', 'a'],
    ['ok/64-chars', 'a'.repeat(64)],
    ['ok/dot-prefix', '.hidden'],
    ['ok/three-dots', '...'],
  ])('%s', (_name, id) => {
    expect(isDeviceId(id)).toBe(true)
    expect(assertDeviceId(id)).toBe(id)
    expect(new RegExp(DEVICE_ID_PATTERN_SOURCE).test(id)).toBe(true)
  })

  it.each([
    ['fail/empty', ''],
    ['fail/65-chars', 'a'.repeat(65)],
    ['fail/slash', 'a/b'],
    ['fail/plus', 'a+b'],
    ['fail/hash', 'a#b'],
    ['fail/space', 'a b'],
    ['fail/dot', '.'],
    ['fail/dot-dot', '..'],
    ['fail/newline', 'dev-1\n'],
    ['fail/unicode', 'pümpe'],
    ['fail/not-a-string', 42],
    ['fail/undefined', undefined],
  ])('%s', (_name, id) => {
    expect(isDeviceId(id)).toBe(false)
    expect(() => assertDeviceId(id)).toThrow(expect.objectContaining({ code: 'GH_DEVICE_ID_INVALID' }))
  })

  it('keeps the RegExp and its JSON-schema source in step', () => {
    expect(DEVICE_ID_PATTERN.source).toBe(new RegExp(DEVICE_ID_PATTERN_SOURCE).source)
  })
})
