import { describe, expect, it } from 'vitest'
import { createRedactor, redactString, resolveAiBridgeOptions } from '../../../../broker/index.ts'
import { redactionRuleFor } from '../../../../broker/ai-bridge/redact.ts'

describe('redactString', () => {
  it.each([
    ['ok/email', 'mail bob.smith+iot@example.co.uk now', 'mail [email] now'],
    ['ok/phone-intl', 'call +1 (555) 123-4567!', 'call [phone]!'],
    ['ok/phone-dots', 'tel 555.123.4567', 'tel [phone]'],
    ['ok/phone-spaces', '+44 20 7946 0958', '[phone]'],
    ['ok/ipv4', 'from 10.0.0.1.', 'from [ip].'],
    ['ok/ipv4-port', 'host 192.168.1.254:8080', 'host [ip]:8080'],
    ['ok/ipv6', 'v6 2001:db8::8a2e:370:7334 and ::1 and fe80::1%eth0', 'v6 [ip] and [ip] and [ip]'],
    ['ok/ipv4-mapped', 'peer ::ffff:192.0.2.1', 'peer [ip]'],
    ['ok/mac', 'mac 00:1A:2B:3C:4D:5E, 00-1a-2b-3c-4d-5e, 001a.2b3c.4d5e', 'mac [mac], [mac], [mac]'],
    ['keep/iso-timestamp', '2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z'],
    ['keep/date-time', 'at 2026-01-01 10:00:00', 'at 2026-01-01 10:00:00'],
    ['keep/clock-time', 'time 12:30:45', 'time 12:30:45'],
    ['keep/bare-digits', 'serial 5551234567', 'serial 5551234567'],
    ['keep/version', 'fw 1.2.3', 'fw 1.2.3'],
    ['keep/short', 'ok', 'ok'],
  ])('%s', (_name, input, expected) => {
    expect(redactString(input)).toBe(expected)
  })
})

describe('createRedactor', () => {
  const redact = createRedactor({ fields: ['apiKey', 'owner'], coordinatePrecision: 2 })

  it('removes configured fields anywhere (case, _ and - ignored), rounds coordinates and scrubs strings, without touching the input', () => {
    const input = {
      temp: 21.5,
      API_KEY: 'k',
      nested: { Owner: 'Ann', list: [{ 'api-key': 'x', lat: 52.520008, lon: 13.404954 }], gps: { latitude: -33.868820, longitude: 151.209296 } },
      contact: 'ann@example.com',
      ip: '10.0.0.7',
      lng: 'not a number',
    }
    const copy = structuredClone(input)
    expect(redact(input)).toEqual({
      temp: 21.5,
      nested: { list: [{ lat: 52.52, lon: 13.4 }], gps: { latitude: -33.87, longitude: 151.21 } },
      contact: '[email]',
      ip: '[ip]',
      lng: 'not a number',
    })
    expect(input).toEqual(copy)
  })

  it('truncates nesting deeper than 32 levels instead of recursing on', () => {
    let deep: unknown = 'leaf'
    for (let i = 0; i < 40; i++) deep = { d: deep }
    expect(JSON.stringify(redact(deep))).toContain('"[truncated]"')
  })

  it('a group adds fields to the default list and may change the precision', () => {
    const options = resolveAiBridgeOptions({ redaction: { default: { fields: ['a'], coordinatePrecision: 3 }, groups: { g: { fields: ['b'], coordinatePrecision: 0 } } } })
    expect(redactionRuleFor(options, 'g')).toEqual({ fields: ['a', 'b'], coordinatePrecision: 0 })
    expect(redactionRuleFor(options, 'other')).toEqual({ fields: ['a'], coordinatePrecision: 3 })
    expect(redactionRuleFor(options, null)).toEqual({ fields: ['a'], coordinatePrecision: 3 })
  })
})
