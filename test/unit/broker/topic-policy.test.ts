import { describe, expect, it } from 'vitest'
import { canPublish, canSubscribe } from '../../../broker/index.ts'
import { filterWithin, isWellFormedFilter } from '../../../broker/topic-policy.ts'
import {
  insightsTopic,
  parseDeviceTopic,
  settingsReportedTopic,
  settingsTopic,
  telemetryTopic,
} from '../../../broker/topics.ts'

const A = 'pump-7'

describe('canPublish', () => {
  it.each([
    ['ok/telemetry', 'devices/pump-7/telemetry', null],
    ['ok/telemetry-subtopic', 'devices/pump-7/telemetry/engine/temp', null],
    ['ok/settings-reported', 'devices/pump-7/settings/reported', null],
    ['fail/other-device-telemetry', 'devices/B/telemetry', 'not-permitted'],
    ['fail/own-settings', 'devices/pump-7/settings', 'not-permitted'],
    ['fail/own-insights', 'devices/pump-7/insights', 'not-permitted'],
    ['fail/settings-reported-below', 'devices/pump-7/settings/reported/x', 'not-permitted'],
    ['fail/device-root', 'devices/pump-7', 'not-permitted'],
    ['fail/other-area', 'devices/pump-7/firmware', 'not-permitted'],
    ['fail/sys', '$SYS/broker/x', 'not-permitted'],
    ['fail/leading-slash', '/devices/pump-7/telemetry', 'empty-level'],
    ['fail/trailing-slash', 'devices/pump-7/telemetry/', 'empty-level'],
    ['fail/empty-level', 'devices/pump-7/telemetry//x', 'empty-level'],
    ['fail/case-matters', 'Devices/pump-7/telemetry', 'not-permitted'],
    ['fail/prefix-of-id', 'devices/pump-77/telemetry', 'not-permitted'],
    ['fail/empty', '', 'empty'],
    ['fail/nul', 'devices/pump-7/telemetry\u0000x', 'invalid-character'],
    ['fail/control-char', 'devices/pump-7/telemetry/\u0007', 'invalid-character'],
    ['fail/plus', 'devices/pump-7/telemetry/+', 'wildcard-in-topic'],
    ['fail/hash', 'devices/pump-7/telemetry/#', 'wildcard-in-topic'],
    ['fail/too-long', `devices/pump-7/telemetry/${'x'.repeat(300)}`, 'too-long'],
  ])('%s', (_name, topic, reason) => {
    expect(canPublish(A, topic)).toEqual(reason === null ? { ok: true } : { ok: false, reason })
  })

  it('refuses everything for an invalid device id', () => {
    expect(canPublish('+', 'devices/+/telemetry')).toEqual({ ok: false, reason: 'invalid-device-id' })
    expect(canPublish('a/b', 'devices/a/b/telemetry')).toEqual({ ok: false, reason: 'invalid-device-id' })
  })
})

describe('canSubscribe', () => {
  it.each([
    ['ok/settings', 'devices/pump-7/settings', null],
    ['ok/insights', 'devices/pump-7/insights', null],
    ['fail/hash', '#', 'not-permitted'],
    ['fail/plus-everything', '+/+/+', 'not-permitted'],
    ['fail/plus-prefix', '+/pump-7/settings', 'not-permitted'],
    ['fail/any-device-settings', 'devices/+/settings', 'not-permitted'],
    ['fail/other-device-all', 'devices/B/#', 'not-permitted'],
    ['fail/other-device-settings', 'devices/B/settings', 'not-permitted'],
    // least privilege: devices/{self}/# reaches own telemetry and settings/reported (publish-only)
    ['fail/own-all', 'devices/pump-7/#', 'not-permitted'],
    ['fail/own-plus', 'devices/pump-7/+', 'not-permitted'],
    ['fail/own-settings-subtree', 'devices/pump-7/settings/#', 'not-permitted'],
    ['fail/own-settings-reported', 'devices/pump-7/settings/reported', 'not-permitted'],
    ['fail/own-telemetry', 'devices/pump-7/telemetry', 'not-permitted'],
    ['fail/sys', '$SYS/#', 'not-permitted'],
    ['fail/empty', '', 'empty'],
    ['fail/nul', 'devices/pump-7/settings\u0000', 'invalid-character'],
    ['fail/hash-not-last', 'devices/#/settings', 'malformed-filter'],
    ['fail/hash-in-level', 'devices/pump-7/settings#', 'malformed-filter'],
    ['fail/plus-in-level', 'devices/pump-7+/settings', 'malformed-filter'],
    ['fail/trailing-slash', 'devices/pump-7/settings/', 'empty-level'],
    ['fail/shared-subscription', '$share/g/devices/pump-7/settings', 'not-permitted'],
  ])('%s', (_name, filter, reason) => {
    expect(canSubscribe(A, filter)).toEqual(reason === null ? { ok: true } : { ok: false, reason })
  })
})

describe('filterWithin', () => {
  const w = (inner: string, outer: string) => filterWithin(inner.split('/'), outer.split('/'))
  it.each([
    ['a/b', 'a/b', true],
    ['a/b', 'a/+', true],
    ['a/+', 'a/+', true],
    ['a', 'a/#', true],
    ['a/b/c', 'a/#', true],
    ['a/#', 'a/#', true],
    ['a/+/c', 'a/#', true],
    ['a/#', 'a/+', false],
    ['a/+', 'a/b', false],
    ['a/b/c', 'a/+', false],
    ['a', 'a/+', false],
    ['a/b', 'a', false],
    ['#', 'a/#', false],
  ])('%s within %s: %s', (inner, outer, expected) => {
    expect(w(inner, outer)).toBe(expected)
  })

  it('checks filter syntax', () => {
    expect(isWellFormedFilter(['a', '#'])).toBe(true)
    expect(isWellFormedFilter(['#', 'a'])).toBe(false)
    expect(isWellFormedFilter(['a+'])).toBe(false)
  })
})

describe('topics', () => {
  it('builds the device topics', () => {
    expect(telemetryTopic(A)).toBe('devices/pump-7/telemetry')
    expect(telemetryTopic(A, 'engine', 'temp')).toBe('devices/pump-7/telemetry/engine/temp')
    expect(settingsTopic(A)).toBe('devices/pump-7/settings')
    expect(settingsReportedTopic(A)).toBe('devices/pump-7/settings/reported')
    expect(insightsTopic(A)).toBe('devices/pump-7/insights')
  })

  it.each([
    ['devices/pump-7/telemetry/a/b', { deviceId: A, kind: 'telemetry', subtopic: ['a', 'b'] }],
    ['devices/pump-7/settings', { deviceId: A, kind: 'settings', subtopic: [] }],
    ['devices/pump-7/settings/reported', { deviceId: A, kind: 'settings.reported', subtopic: [] }],
    ['devices/pump-7/insights', { deviceId: A, kind: 'insights', subtopic: [] }],
    ['devices/pump-7/insights/x', null],
    ['devices/pump-7/settings/other', null],
    ['devices/+/settings', null],
    ['devices/pump-7/telemetry/', null],
    ['other/pump-7/telemetry', null],
    ['', null],
  ])('parses %s', (topic, expected) => {
    expect(parseDeviceTopic(topic)).toEqual(expected)
  })
})
