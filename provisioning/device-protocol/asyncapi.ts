import type { APP_CLASSES } from '../apps/index.ts'
import {
  CLAIM_REQUEST_SCHEMA,
  ENROLLMENT_ANSWER_SCHEMA,
  INSIGHTS_MESSAGE_SCHEMA,
  RENEWAL_NOTICE_SCHEMA,
  RENEWAL_REQUEST_SCHEMA,
  SETTINGS_DOCUMENT_SCHEMA,
  SETTINGS_REPORT_SCHEMA,
  TELEMETRY_SCHEMA,
} from './payload-schemas.ts'

interface Channel {
  address: string
  /** who publishes: the device (send) or the broker (receive, from the device's side) */
  action: 'send' | 'receive'
  qos: 0 | 1
  summary: string
  payload: object
  example: unknown
}

const DEVICE_ID = { deviceId: { description: 'the device id = certificate CN = MQTT clientId' } }
const NONCE = { nonce: { description: 'the claim session: its clientId is claim:<nonce>' } }
const PEM = '-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n'
const CSR = '-----BEGIN CERTIFICATE REQUEST-----\n…\n-----END CERTIFICATE REQUEST-----\n'
const ISSUED = {
  ok: true,
  requestId: 'r1',
  deviceId: 'pump-7',
  certificate: PEM,
  chain: PEM,
  serial: '5f2c01',
  notBefore: '2026-01-01T00:00:00.000Z',
  notAfter: '2027-01-01T00:00:00.000Z',
  renewAfter: '2026-09-01T08:00:00.000Z',
}

/** Every device topic (broker/topics.ts), from the device's side, with its payload schema and an example. */
export const DEVICE_CHANNELS: Readonly<Record<string, Channel>> = {
  telemetry: {
    address: 'devices/{deviceId}/telemetry',
    action: 'send',
    qos: 1,
    summary: 'telemetry (also any level below, e.g. devices/{deviceId}/telemetry/alerts); JSON feeds the AI bridge',
    payload: TELEMETRY_SCHEMA,
    example: { temperature: 21.5, pressure: 1.02 },
  },
  settingsReported: {
    address: 'devices/{deviceId}/settings/reported',
    action: 'send',
    qos: 1,
    summary: 'the settings the device applied',
    payload: SETTINGS_REPORT_SCHEMA,
    example: { version: 3, settings: { rate: 5 } },
  },
  settings: {
    address: 'devices/{deviceId}/settings',
    action: 'receive',
    qos: 1,
    summary: 'the current settings document on subscribe, and each change',
    payload: SETTINGS_DOCUMENT_SCHEMA,
    example: { version: 3, settings: { rate: 5 }, updatedAt: '2026-01-02T10:00:00.000Z' },
  },
  insights: {
    address: 'devices/{deviceId}/insights',
    action: 'receive',
    qos: 1,
    summary: 'AI insights about its telemetry, and throttle notices',
    payload: INSIGHTS_MESSAGE_SCHEMA,
    example: { type: 'throttled', deviceId: 'pump-7', reason: 'rate', retryAt: '2026-01-02T10:01:00.000Z' },
  },
  renewalRequest: {
    address: 'devices/{deviceId}/renewal/request',
    action: 'send',
    qos: 1,
    summary: 'a CSR for a new certificate, in the renewal window',
    payload: RENEWAL_REQUEST_SCHEMA,
    example: { csr: CSR, requestId: 'r1' },
  },
  renewalResponse: {
    address: 'devices/{deviceId}/renewal/response',
    action: 'receive',
    qos: 1,
    summary: 'the new certificate and chain, or a coded refusal',
    payload: ENROLLMENT_ANSWER_SCHEMA,
    example: { ...ISSUED, previousValidUntil: '2026-09-02T08:00:00.000Z' },
  },
  renewalNotice: {
    address: 'devices/{deviceId}/renewal/notice',
    action: 'receive',
    qos: 1,
    summary: 'the certificate is in its renewal window (once per session): renew before windowEndsAt',
    payload: RENEWAL_NOTICE_SCHEMA,
    example: {
      serial: '5f2c01',
      windowOpensAt: '2026-09-01T08:00:00.000Z',
      windowEndsAt: '2027-01-01T00:00:00.000Z',
      notAfter: '2027-01-01T00:00:00.000Z',
    },
  },
  claimRequest: {
    address: 'provisioning/{nonce}/request',
    action: 'send',
    qos: 1,
    summary: 'claim session: a CSR and the device id it asks for',
    payload: CLAIM_REQUEST_SCHEMA,
    example: { deviceId: 'pump-7', csr: CSR, requestId: 'r1' },
  },
  claimResponse: {
    address: 'provisioning/{nonce}/response',
    action: 'receive',
    qos: 1,
    summary: "claim session: the new device's certificate, or a coded refusal",
    payload: ENROLLMENT_ANSWER_SCHEMA,
    example: { ok: false, requestId: 'r1', error: { code: 'GH_CLAIM_USED_UP', message: 'this claim has provisioned all its devices' } },
  },
}

/**
 * What an app (CN and clientId `app:<name>`, docs/device-protocol.md "Apps") may subscribe to, per topic
 * class: the device channel it reads (so the same payload schema) and the filters it may use (the
 * broker's appGrants). Only the messages of devices in its groups reach it.
 */
export const APP_CHANNELS: Readonly<Record<(typeof APP_CLASSES)[number], { channel: keyof typeof DEVICE_CHANNELS; filters: string[] }>> = {
  telemetry: { channel: 'telemetry', filters: ['devices/+/telemetry', 'devices/+/telemetry/#'] },
  reported: { channel: 'settingsReported', filters: ['devices/+/settings/reported'] },
  insights: { channel: 'insights', filters: ['devices/+/insights'] },
}

/**
 * The AsyncAPI 3.0 document of the device protocol (served at GET /asyncapi.json), built from
 * DEVICE_CHANNELS and so from the payload schemas the control plane validates with; apps' operations
 * (APP_CHANNELS) receive on the same channels.
 */
export function buildAsyncApi(version: string): Record<string, unknown> {
  const channels: Record<string, unknown> = {}
  const operations: Record<string, unknown> = {}
  const messages: Record<string, unknown> = {}
  for (const [name, c] of Object.entries(DEVICE_CHANNELS)) {
    messages[name] = { name, contentType: 'application/json', summary: c.summary, payload: c.payload, examples: [{ payload: c.example }] }
    channels[name] = {
      address: c.address,
      parameters: c.address.includes('{nonce}') ? NONCE : DEVICE_ID,
      messages: { [name]: { $ref: `#/components/messages/${name}` } },
    }
    operations[`${c.action}${name.charAt(0).toUpperCase()}${name.slice(1)}`] = {
      action: c.action,
      channel: { $ref: `#/channels/${name}` },
      summary: c.action === 'send' ? `the device publishes: ${c.summary}` : `the device subscribes: ${c.summary}`,
      messages: [{ $ref: `#/channels/${name}/messages/${name}` }],
      bindings: { mqtt: { qos: c.qos, retain: false } },
    }
  }
  for (const [cls, a] of Object.entries(APP_CHANNELS)) {
    const c = DEVICE_CHANNELS[a.channel]
    if (!c) continue // asyncapi.test.ts checks that every class names a device channel
    operations[`appReceive${cls.charAt(0).toUpperCase()}${cls.slice(1)}`] = {
      action: 'receive',
      channel: { $ref: `#/channels/${a.channel}` },
      summary: `an app with the topic class ${cls} subscribes (${a.filters.join(', ')}, or narrower): ${c.summary}`,
      description: "Only the messages of devices in the app's groups reach it; an app publishes nothing.",
      security: [{ $ref: '#/components/securitySchemes/appCertificate' }],
      messages: [{ $ref: `#/channels/${a.channel}/messages/${a.channel}` }],
      bindings: { mqtt: { qos: c.qos, retain: false } },
      tags: [{ name: 'app' }],
    }
  }
  const security = [{ $ref: '#/components/securitySchemes/deviceCertificate' }, { $ref: '#/components/securitySchemes/appCertificate' }]
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Gatehouse device protocol',
      version,
      description:
        'MQTT 3.1.1 over mutual TLS (or over WebSockets with TLS on /mqtt): clientId = certificate CN = device id. ' +
        'A device may publish and subscribe only to its own topics; anything else is refused. ' +
        'An app (clientId = certificate CN = app:<name>) only subscribes, inside its topic classes, and gets the messages ' +
        'of the devices in its groups (the appReceive operations). See docs/device-protocol.md.',
    },
    defaultContentType: 'application/json',
    servers: {
      mqtts: {
        host: '{host}:8883',
        protocol: 'secure-mqtt',
        protocolVersion: '3.1.1',
        security,
        variables: { host: { default: 'localhost' } },
      },
      wss: {
        host: '{host}:{wsPort}',
        pathname: '/mqtt',
        protocol: 'wss',
        security,
        variables: { host: { default: 'localhost' }, wsPort: { description: 'the wsPort setting (off by default)' } },
      },
    },
    channels,
    operations,
    components: {
      messages,
      securitySchemes: {
        deviceCertificate: { type: 'X509', description: 'a device certificate from the Gatehouse CA' },
        appCertificate: { type: 'X509', description: 'an app certificate from the Gatehouse CA (CN app:<name>, `gatehouse app create`)' },
      },
    },
  }
}
