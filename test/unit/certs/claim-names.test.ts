import { describe, expect, it } from 'vitest'
import { claimIdFromCommonName, claimNonceFromClientId, isDeviceId } from '../../../certs/index.ts'

describe('claimIdFromCommonName', () => {
  it.each([
    ['ok/slug', 'claim:pumps-7k2m9q4x', 'pumps-7k2m9q4x'],
    ['ok/shortest', 'claim:ab1', 'ab1'],
    ['ok/longest', `claim:a${'b'.repeat(40)}`, `a${'b'.repeat(40)}`],
    ['fail/too-short', 'claim:ab', null],
    ['fail/too-long', `claim:a${'b'.repeat(41)}`, null],
    ['fail/uppercase', 'claim:Pumps-1', null],
    ['fail/leading-dash', 'claim:-pumps', null],
    ['fail/no-prefix', 'pumps-1', null],
    ['fail/prefix-case', 'Claim:pumps-1', null],
    ['fail/empty', 'claim:', null],
    ['fail/colon', 'claim:a:b:c', null],
  ])('%s', (_name, cn, expected) => {
    expect(claimIdFromCommonName(cn)).toBe(expected)
    // no claim CN is ever a device id
    if (expected !== null) expect(isDeviceId(cn)).toBe(false)
  })
})

describe('claimNonceFromClientId', () => {
  it.each([
    ['ok/16', 'claim:AAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAA'],
    ['ok/48-mixed', `claim:${'aZ0_-'.repeat(9)}abc`, `${'aZ0_-'.repeat(9)}abc`],
    ['fail/15', 'claim:AAAAAAAAAAAAAAA', null],
    ['fail/49', `claim:${'A'.repeat(49)}`, null],
    ['fail/slash', 'claim:AAAAAAAA/AAAAAAAA', null],
    ['fail/wildcard', 'claim:AAAAAAAA+AAAAAAAA', null],
    ['fail/dot', 'claim:AAAAAAAA.AAAAAAAA', null],
    ['fail/device-id', 'pump-7', null],
  ])('%s', (_name, clientId, expected) => {
    expect(claimNonceFromClientId(clientId)).toBe(expected)
  })
})
