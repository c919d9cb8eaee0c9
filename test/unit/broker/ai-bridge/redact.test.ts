import { describe, expect, it } from 'vitest'
import { resolveAiBridgeOptions } from '../../../../broker/index.ts'
import { createRedactor, redactString, redactionRuleFor } from '../../../../broker/ai-bridge/redact.ts'

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
      nested: {
        Owner: 'Ann',
        list: [{ 'api-key': 'x', lat: 52.520008, lon: 13.404954 }],
        gps: { latitude: -33.86882, longitude: 151.209296 },
      },
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
    const options = resolveAiBridgeOptions({
      redaction: { default: { fields: ['a'], coordinatePrecision: 3 }, groups: { g: { fields: ['b'], coordinatePrecision: 0 } } },
    })
    expect(redactionRuleFor(options, 'g')).toEqual({ fields: ['a', 'b'], coordinatePrecision: 0 })
    expect(redactionRuleFor(options, 'other')).toEqual({ fields: ['a'], coordinatePrecision: 3 })
    expect(redactionRuleFor(options, null)).toEqual({ fields: ['a'], coordinatePrecision: 3 })
  })
})

describe('the default redaction (what may reach an AI provider)', () => {
  const redact = createRedactor(resolveAiBridgeOptions({}).redaction.default)
  const point = { type: 'Point', coordinates: [13.404954, 52.520008] }

  it.each<[string, unknown, unknown]>([
    // secret-like key names, matched by normalised substring (or as a whole word when short)
    ['remove/wifi_password', { wifi_password: 'hunter2', rssi: -61 }, { rssi: -61 }],
    ['remove/wifipassword', { wifipassword: 'hunter2' }, {}],
    ['remove/db_pass', { db_pass: 'hunter2', dbPass: 'x' }, {}],
    ['remove/access_token', { access_token: 'eyJhbGciOi' }, {}],
    ['remove/apiToken', { apiToken: 'abc' }, {}],
    ['remove/x-api-key', { 'x-api-key': 'abc' }, {}],
    ['remove/authToken', { authToken: 'abc' }, {}],
    ['remove/pin', { simPIN: 1234, sim_pin: '0000', pin_code: '1111', PUK: 12345678 }, {}],
    ['remove/private-key', { privateKeyPem: '-----BEGIN', client_secret: 's' }, {}],
    // personal key names
    ['remove/ownerName', { ownerName: 'Ann Smith' }, {}],
    ['remove/name', { name: 'Ann Smith', firstName: 'Ann', last_name: 'Smith' }, {}],
    ['remove/address', { address: '1 Main St', home_address: { city: 'Berlin' } }, {}],
    ['remove/numeric-phone', { mobile: 4915112345678, phone_number: 15551234567 }, {}],
    ['remove/email-key', { contactEmail: 'x' }, {}],
    ['remove/iban-key', { iban: 'x', card_number: 'y' }, {}],
    // keys that are themselves personal data are replaced, values kept (and redacted in turn)
    ['key/email', { 'bob@example.com': { temperature: 21 } }, { '[email]': { temperature: 21 } }],
    ['key/two-emails', { 'bob@example.com': 1, 'ann@example.org': 2 }, { '[email]': 1, '[email] (2)': 2 }],
    ['key/ip', { '10.0.0.7': 'up' }, { '[ip]': 'up' }],
    // coordinates: keys with a coordinate word, GeoJSON, arrays under a location key, numeric strings
    ['coord/latitude_deg', { latitude_deg: 52.520008, longitude_deg: 13.404954 }, { latitude_deg: 52.52, longitude_deg: 13.4 }],
    ['coord/geojson-point', point, { type: 'Point', coordinates: [13.4, 52.52] }],
    [
      'coord/geojson-feature',
      {
        type: 'Feature',
        geometry: {
          type: 'LineString',
          coordinates: [
            [13.404954, 52.520008],
            [13.411111, 52.529999],
          ],
        },
      },
      {
        type: 'Feature',
        geometry: {
          type: 'LineString',
          coordinates: [
            [13.4, 52.52],
            [13.41, 52.53],
          ],
        },
      },
    ],
    ['coord/location-array', { location: [13.404954, 52.520008] }, { location: [13.4, 52.52] }],
    ['coord/gps-object', { gps: { x: 13.404954, y: 52.520008 } }, { gps: { x: 13.4, y: 52.52 } }],
    ['coord/lat-lng-pair', { pos: { lat: 52.520008, lng: 13.404954 } }, { pos: { lat: 52.52, lng: 13.4 } }],
    ['coord/array-of-pairs', { stops: [{ lat: 52.520008, lon: 13.404954 }] }, { stops: [{ lat: 52.52, lon: 13.4 }] }],
    ['coord/string', { lat: '52.520008' }, { lat: '52.52' }],
    // card numbers (Luhn) and IBANs (mod 97) in strings
    ['card/spaces', { note: 'card 4111 1111 1111 1111 ok' }, { note: 'card [card] ok' }],
    ['card/dashes', { note: '5555-5555-5555-4444' }, { note: '[card]' }],
    ['card/plain', { note: '4111111111111111' }, { note: '[card]' }],
    ['card/amex', { note: 'amex 3782 822463 10005' }, { note: 'amex [card]' }],
    ['iban/grouped', { note: 'pay DE89 3704 0044 0532 0130 00 now' }, { note: 'pay [iban] now' }],
    ['iban/compact', { note: 'GB82WEST12345698765432' }, { note: '[iban]' }],
    // telemetry that must pass unchanged
    [
      'keep/readings',
      { temperature: 21.5, humidity: 40, vibration: 0.02, pressure_kpa: 101.325, seq: 1234, ts: 1767225600000 },
      { temperature: 21.5, humidity: 40, vibration: 0.02, pressure_kpa: 101.325, seq: 1234, ts: 1767225600000 },
    ],
    ['keep/iso-ts', { ts: '2026-01-01T10:00:00Z', reading: '42' }, { ts: '2026-01-01T10:00:00Z', reading: '42' }],
    [
      'keep/luhn-fails',
      { note: '4111111111111112', batch: '4111 1111 1111 1112' },
      { note: '4111111111111112', batch: '4111 1111 1111 1112' },
    ],
    ['keep/ms-timestamp-string', { ts: '1767225600000' }, { ts: '1767225600000' }],
    ['keep/iban-shape-fails-mod97', { note: 'AB12 CDEF GHIJ KLMN OP' }, { note: 'AB12 CDEF GHIJ KLMN OP' }],
    [
      'keep/lookalike-words',
      { bypass_valve: true, compass_heading: 270.25, passes: 3, longitude_ok: true, allocation: 0.755, composition: 0.125 },
      { bypass_valve: true, compass_heading: 270.25, passes: 3, longitude_ok: true, allocation: 0.755, composition: 0.125 },
    ],
    [
      'keep/gpio-pin-and-telemetry',
      { gpio: { pin: 4, state: 'high' }, telemetry_rate: 5 },
      { gpio: { pin: 4, state: 'high' }, telemetry_rate: 5 },
    ],
    ['keep/plain-array', { accel: [0.012345, 9.812345] }, { accel: [0.012345, 9.812345] }],
  ])('%s', (_name, input, expected) => {
    expect(redact(input)).toEqual(expected)
  })

  it("keeps a prototype-named key as data, never as the output object's prototype", () => {
    const out = redact(JSON.parse('{"__proto__": {"polluted": 1}, "t": 1}')) as Record<string, unknown>
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(Object.keys(out)).toEqual(['__proto__', 't'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
