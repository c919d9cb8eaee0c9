import { describe, expect, it } from 'vitest'
import { canPublish, canPublishTo, canSubscribe, canSubscribeTo, filterWithin, isWellFormedFilter } from '../../../broker/topic-policy.ts'
import {
  claimGrants,
  claimRequestTopic,
  claimResponseTopic,
  insightsTopic,
  isBrokerToDeviceKind,
  parseDeviceTopic,
  renewalRequestTopic,
  renewalNoticeTopic,
  renewalResponseTopic,
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
    ['ok/renewal-request', 'devices/pump-7/renewal/request', null],
    ['fail/renewal-response', 'devices/pump-7/renewal/response', 'not-permitted'],
    ['fail/renewal-notice', 'devices/pump-7/renewal/notice', 'not-permitted'],
    ['fail/other-device-renewal-request', 'devices/B/renewal/request', 'not-permitted'],
    ['fail/renewal-request-below', 'devices/pump-7/renewal/request/x', 'not-permitted'],
    ['fail/provisioning', 'provisioning/nonceAAAAAAAAAAAAAAA/request', 'not-permitted'],
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
    ['ok/renewal-response', 'devices/pump-7/renewal/response', null],
    ['ok/renewal-notice', 'devices/pump-7/renewal/notice', null],
    ['fail/other-device-renewal-notice', 'devices/B/renewal/notice', 'not-permitted'],
    ['fail/renewal-request', 'devices/pump-7/renewal/request', 'not-permitted'],
    ['fail/renewal-all', 'devices/pump-7/renewal/#', 'not-permitted'],
    ['fail/other-device-renewal-response', 'devices/B/renewal/response', 'not-permitted'],
    ['fail/any-device-renewal-response', 'devices/+/renewal/response', 'not-permitted'],
    ['fail/provisioning-responses', 'provisioning/+/response', 'not-permitted'],
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

describe('claim session grants (canPublishTo / canSubscribeTo)', () => {
  const NONCE = 'nonceAAAAAAAAAAAAAAA'
  const grants = claimGrants(NONCE)

  it.each([
    ['ok/own-request', `provisioning/${NONCE}/request`, null],
    ['fail/own-response', `provisioning/${NONCE}/response`, 'not-permitted'],
    ['fail/other-request', 'provisioning/nonceBBBBBBBBBBBBBBB/request', 'not-permitted'],
    ['fail/request-below', `provisioning/${NONCE}/request/x`, 'not-permitted'],
    ['fail/device-telemetry', 'devices/pump-7/telemetry', 'not-permitted'],
    ['fail/wildcard', 'provisioning/+/request', 'wildcard-in-topic'],
    ['fail/empty-level', `provisioning//request`, 'empty-level'],
  ])('publish %s', (_name, topic, reason) => {
    expect(canPublishTo(grants, topic)).toEqual(reason === null ? { ok: true } : { ok: false, reason })
  })

  it.each([
    ['ok/own-response', `provisioning/${NONCE}/response`, null],
    ['fail/other-response', 'provisioning/nonceBBBBBBBBBBBBBBB/response', 'not-permitted'],
    ['fail/every-response', 'provisioning/+/response', 'not-permitted'],
    ['fail/own-all', `provisioning/${NONCE}/#`, 'not-permitted'],
    ['fail/provisioning-all', 'provisioning/#', 'not-permitted'],
    ['fail/own-request', `provisioning/${NONCE}/request`, 'not-permitted'],
    ['fail/hash', '#', 'not-permitted'],
    ['fail/device-settings', 'devices/pump-7/settings', 'not-permitted'],
    ['fail/malformed', 'provisioning/#/response', 'malformed-filter'],
  ])('subscribe %s', (_name, filter, reason) => {
    expect(canSubscribeTo(grants, filter)).toEqual(reason === null ? { ok: true } : { ok: false, reason })
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
    expect(renewalRequestTopic(A)).toBe('devices/pump-7/renewal/request')
    expect(renewalResponseTopic(A)).toBe('devices/pump-7/renewal/response')
    expect(renewalNoticeTopic(A)).toBe('devices/pump-7/renewal/notice')
    expect(claimRequestTopic('nonceAAAAAAAAAAAAAAA')).toBe('provisioning/nonceAAAAAAAAAAAAAAA/request')
    expect(claimResponseTopic('nonceAAAAAAAAAAAAAAA')).toBe('provisioning/nonceAAAAAAAAAAAAAAA/response')
  })

  it('sends settings, insights and renewal answers to devices, nothing else', () => {
    expect(
      ['telemetry', 'settings', 'settings.reported', 'insights', 'renewal.request', 'renewal.response', 'renewal.notice'].filter((k) =>
        isBrokerToDeviceKind(k as never),
      ),
    ).toEqual(['settings', 'insights', 'renewal.response', 'renewal.notice'])
  })

  it.each([
    ['devices/pump-7/telemetry/a/b', { deviceId: A, kind: 'telemetry', subtopic: ['a', 'b'] }],
    ['devices/pump-7/settings', { deviceId: A, kind: 'settings', subtopic: [] }],
    ['devices/pump-7/settings/reported', { deviceId: A, kind: 'settings.reported', subtopic: [] }],
    ['devices/pump-7/insights', { deviceId: A, kind: 'insights', subtopic: [] }],
    ['devices/pump-7/renewal/request', { deviceId: A, kind: 'renewal.request', subtopic: [] }],
    ['devices/pump-7/renewal/response', { deviceId: A, kind: 'renewal.response', subtopic: [] }],
    ['devices/pump-7/renewal/notice', { deviceId: A, kind: 'renewal.notice', subtopic: [] }],
    ['devices/pump-7/renewal', null],
    ['devices/pump-7/renewal/other', null],
    ['devices/pump-7/renewal/request/x', null],
    ['provisioning/nonceAAAAAAAAAAAAAAA/request', null],
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

describe('canPublishTo with a wildcard grant, asked again and again (its allowed topics are remembered)', () => {
  const grants = { publish: ['devices/pump-7/telemetry/#'], subscribe: [] }

  it('answers the same for a topic the second time, and after more topics than it remembers', () => {
    const topics = Array.from({ length: 100 }, (_, i) => `devices/pump-7/telemetry/sensor-${i}`)
    for (let round = 0; round < 2; round++) {
      for (const t of topics) expect(canPublishTo(grants, t)).toEqual({ ok: true })
      expect(canPublishTo(grants, 'devices/pump-8/telemetry/sensor-1')).toEqual({ ok: false, reason: 'not-permitted' })
      expect(canPublishTo(grants, 'devices/pump-7/telemetry/+')).toEqual({ ok: false, reason: 'wildcard-in-topic' })
      expect(canPublishTo(grants, 'devices/pump-7/telemetry//x')).toEqual({ ok: false, reason: 'empty-level' })
    }
  })

  it('remembers nothing for another grants object: one device allowed a topic does not allow it to another', () => {
    expect(canPublishTo(grants, 'devices/pump-7/telemetry/temp')).toEqual({ ok: true })
    const other = { publish: ['devices/pump-8/telemetry/#'], subscribe: [] }
    expect(canPublishTo(other, 'devices/pump-7/telemetry/temp')).toEqual({ ok: false, reason: 'not-permitted' })
  })
})
