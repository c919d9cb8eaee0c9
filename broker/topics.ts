/**
 * The device topic contract (docs/architecture.md "The device topic contract"): the only place topic strings are
 * parsed or built (docs/conventions.md §6). Everything else asks this file.
 *
 *   devices/{id}/telemetry[/...]     device -> broker
 *   devices/{id}/settings/reported   device -> broker
 *   devices/{id}/settings            broker -> device
 *   devices/{id}/insights            broker -> device
 *   devices/{id}/renewal/request     device -> broker (certificate renewal, broker/enrollment.ts)
 *   devices/{id}/renewal/response    broker -> device
 *   devices/{id}/renewal/notice      broker -> device (the certificate is in its renewal window, renewal-notice.ts)
 *   provisioning/{nonce}/request     claim session -> broker (zero-touch provisioning)
 *   provisioning/{nonce}/response    broker -> claim session
 *
 * (docs/device-lifecycle.md; device-sim builds the same strings itself.)
 */

import type { AppTopicClass } from './device-directory.ts'

export const DEVICES_ROOT = 'devices'
export const PROVISIONING_ROOT = 'provisioning'
export const TOPIC_LEVEL_SEPARATOR = '/'

/** MQTT topics and filters are at most 65535 UTF-8 bytes; ours are far shorter. */
export const MAX_TOPIC_LENGTH = 256

export type DeviceTopicKind =
  | 'telemetry'
  | 'settings'
  | 'settings.reported'
  | 'insights'
  | 'renewal.request'
  | 'renewal.response'
  | 'renewal.notice'

export interface DeviceTopic {
  deviceId: string
  kind: DeviceTopicKind
  /** levels below devices/{id}/telemetry, e.g. ['engine', 'temp']; empty for every other kind */
  subtopic: readonly string[]
}

export function telemetryTopic(deviceId: string, ...subtopic: string[]): string {
  return [DEVICES_ROOT, deviceId, 'telemetry', ...subtopic].join(TOPIC_LEVEL_SEPARATOR)
}

export function settingsTopic(deviceId: string): string {
  return `${DEVICES_ROOT}/${deviceId}/settings`
}

export function settingsReportedTopic(deviceId: string): string {
  return `${DEVICES_ROOT}/${deviceId}/settings/reported`
}

export function insightsTopic(deviceId: string): string {
  return `${DEVICES_ROOT}/${deviceId}/insights`
}

export function renewalRequestTopic(deviceId: string): string {
  return `${DEVICES_ROOT}/${deviceId}/renewal/request`
}

export function renewalResponseTopic(deviceId: string): string {
  return `${DEVICES_ROOT}/${deviceId}/renewal/response`
}

export function renewalNoticeTopic(deviceId: string): string {
  return `${DEVICES_ROOT}/${deviceId}/renewal/notice`
}

/** `nonce` is the part of a claim session's clientId after `claim:` (certs claimNonceFromClientId). */
export function claimRequestTopic(nonce: string): string {
  return `${PROVISIONING_ROOT}/${nonce}/request`
}

export function claimResponseTopic(nonce: string): string {
  return `${PROVISIONING_ROOT}/${nonce}/response`
}

/**
 * What one principal (a device, a claim session) may reach, as MQTT filters: topic-policy.ts allows a
 * request only when everything it can reach lies inside one of them. Built once per session.
 */
export interface TopicGrants {
  readonly publish: readonly string[]
  readonly subscribe: readonly string[]
}

export function deviceGrants(deviceId: string): TopicGrants {
  return Object.freeze({
    publish: Object.freeze(devicePublishFilters(deviceId)),
    subscribe: Object.freeze(deviceSubscribeFilters(deviceId)),
  })
}

/** A claim session: its own request topic to write, its own response topic to read, nothing else. */
export function claimGrants(nonce: string): TopicGrants {
  return Object.freeze({
    publish: Object.freeze([claimRequestTopic(nonce)]),
    subscribe: Object.freeze([claimResponseTopic(nonce)]),
  })
}

/**
 * An app (docs/device-protocol.md "Apps"): it publishes nothing and may subscribe, with wildcards, to
 * the devices' topics of its classes. Which devices' messages it then gets (its groups) is decided per
 * message, by the publishing device's group (hooks/authorize-forward.ts), not by the filter.
 */
export function appGrants(classes: readonly AppTopicClass[]): TopicGrants {
  const subscribe: string[] = []
  if (classes.includes('telemetry')) subscribe.push(telemetryTopic('+'), telemetryTopic('+', '#'))
  if (classes.includes('reported')) subscribe.push(settingsReportedTopic('+'))
  if (classes.includes('insights')) subscribe.push(insightsTopic('+'))
  return Object.freeze({ publish: Object.freeze([]), subscribe: Object.freeze(subscribe) })
}

/** The topics a device may publish to, as MQTT filters (the policy checks topic-within-filter). */
export function devicePublishFilters(deviceId: string): string[] {
  return [telemetryTopic(deviceId), telemetryTopic(deviceId, '#'), settingsReportedTopic(deviceId), renewalRequestTopic(deviceId)]
}

/** The topics a device may subscribe to, as MQTT filters. */
export function deviceSubscribeFilters(deviceId: string): string[] {
  return [settingsTopic(deviceId), insightsTopic(deviceId), renewalResponseTopic(deviceId), renewalNoticeTopic(deviceId)]
}

/** A bounded label for metrics: what a topic is for (broker-stats.ts counts publishes in and messages out by it). */
export const TOPIC_CLASSES = ['telemetry', 'settings', 'insights', 'renewal', 'provisioning'] as const
export type TopicClass = (typeof TOPIC_CLASSES)[number]

const CLASS_OF_KIND: Readonly<Record<DeviceTopicKind, TopicClass>> = {
  telemetry: 'telemetry',
  settings: 'settings',
  'settings.reported': 'settings',
  insights: 'insights',
  'renewal.request': 'renewal',
  'renewal.response': 'renewal',
  'renewal.notice': 'renewal',
}

export function topicClassOf(kind: DeviceTopicKind): TopicClass {
  return CLASS_OF_KIND[kind]
}

/** Topics the broker sends to a device (settings delivery, AI insights, renewal answers). */
export function isBrokerToDeviceKind(kind: DeviceTopicKind): boolean {
  return kind === 'settings' || kind === 'insights' || kind === 'renewal.response' || kind === 'renewal.notice'
}

export function splitTopic(topic: string): string[] {
  return topic.split(TOPIC_LEVEL_SEPARATOR)
}

/**
 * Parses a concrete topic name (no wildcards) of the device contract. Returns null for anything else,
 * including wildcards and empty levels. It does not check the device id rule; the policy does.
 */
export function parseDeviceTopic(topic: string): DeviceTopic | null {
  if (topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) return null
  const levels = splitTopic(topic)
  const [root, deviceId, area, ...rest] = levels
  if (root !== DEVICES_ROOT || deviceId === undefined || area === undefined) return null
  if (levels.some((l) => l.length === 0 || l.includes('+') || l.includes('#'))) return null
  if (area === 'telemetry') return { deviceId, kind: 'telemetry', subtopic: rest }
  if (area === 'settings' && rest.length === 0) return { deviceId, kind: 'settings', subtopic: [] }
  if (area === 'settings' && rest.length === 1 && rest[0] === 'reported') {
    return { deviceId, kind: 'settings.reported', subtopic: [] }
  }
  if (area === 'insights' && rest.length === 0) return { deviceId, kind: 'insights', subtopic: [] }
  if (area === 'renewal' && rest.length === 1 && rest[0] === 'request') return { deviceId, kind: 'renewal.request', subtopic: [] }
  if (area === 'renewal' && rest.length === 1 && rest[0] === 'response') return { deviceId, kind: 'renewal.response', subtopic: [] }
  if (area === 'renewal' && rest.length === 1 && rest[0] === 'notice') return { deviceId, kind: 'renewal.notice', subtopic: [] }
  return null
}
