import { Parser } from '@asyncapi/parser'
import { describe, expect, it } from 'vitest'
import * as topics from '../../../broker/topics.ts'
import { APP_CLASSES } from '../../../provisioning/apps/index.ts'
import { APP_CHANNELS, DEVICE_CHANNELS } from '../../../provisioning/device-protocol/asyncapi.ts'
import { apiHarness } from '../../unit/provisioning/api/api-harness.ts'

/** `devices/{deviceId}/telemetry` -> a regex matching the concrete topics of that channel. */
const channelPattern = (address: string) => new RegExp(`^${address.replace(/\{[a-zA-Z]+\}/g, '[^/]+')}$`)

describe('GET /asyncapi.json (the device protocol, AsyncAPI 3)', () => {
  it('is served without a key and is a valid AsyncAPI 3 document by @asyncapi/parser', async () => {
    const { call } = await apiHarness()
    const res = await call(undefined, 'GET', '/asyncapi.json')
    expect(res.statusCode).toBe(200)
    const doc = res.json() as { asyncapi: string; channels: Record<string, { address: string }> }
    expect(doc.asyncapi).toBe('3.0.0')
    const started = performance.now()
    const { document, diagnostics } = await new Parser().parse(res.body)
    const errors = diagnostics.filter((d) => d.severity === 0)
    expect(errors, JSON.stringify(errors, null, 2)).toEqual([])
    expect(document).toBeDefined()
    expect(document!.channels().length).toBe(Object.keys(DEVICE_CHANNELS).length)
    // the app side: one receive operation per topic class, on the device channel, secured by an app certificate
    const appOps = document!.operations().filter((o) => (o.id() ?? '').startsWith('appReceive'))
    expect(appOps.map((o) => o.id()).sort()).toEqual(['appReceiveInsights', 'appReceiveReported', 'appReceiveTelemetry'])
    for (const op of appOps) {
      expect(op.action()).toBe('receive')
      const cls = op.id()!.slice('appReceive'.length).toLowerCase() as keyof typeof APP_CHANNELS
      const channel = op.channels().all()[0]!
      expect(channel.address()).toBe(DEVICE_CHANNELS[APP_CHANNELS[cls].channel]!.address)
      // the same message (and so payload schema) as the device's channel
      expect(op.messages().all()[0]!.payload()?.json()).toMatchObject(DEVICE_CHANNELS[APP_CHANNELS[cls].channel]!.payload)
      expect(op.security().map((s) => s.all()[0]?.scheme().description())).toEqual([expect.stringMatching(/^an app certificate/)])
    }
    // @asyncapi/parser is heavy: about 9 s for this test on a loaded 2-core box, hence an integration test
    expect(performance.now() - started).toBeLessThan(20_000)
  })

  it('has a channel for every device topic broker/topics.ts builds, and nothing else', () => {
    const built = [
      topics.telemetryTopic('pump-7'),
      topics.telemetryTopic('pump-7', 'alerts'),
      topics.settingsTopic('pump-7'),
      topics.settingsReportedTopic('pump-7'),
      topics.insightsTopic('pump-7'),
      topics.renewalRequestTopic('pump-7'),
      topics.renewalResponseTopic('pump-7'),
      topics.renewalNoticeTopic('pump-7'),
      topics.claimRequestTopic('nonceAAAAAAAAAAAAAAA'),
      topics.claimResponseTopic('nonceAAAAAAAAAAAAAAA'),
    ]
    // every topic builder is listed above: a new one must get a channel
    const builders = Object.keys(topics).filter((k) => k.endsWith('Topic') && k !== 'parseDeviceTopic' && k !== 'splitTopic')
    expect(builders.sort()).toEqual(
      [
        'claimRequestTopic',
        'claimResponseTopic',
        'insightsTopic',
        'renewalNoticeTopic',
        'renewalRequestTopic',
        'renewalResponseTopic',
        'settingsReportedTopic',
        'settingsTopic',
        'telemetryTopic',
      ].sort(),
    )
    const addresses = Object.values(DEVICE_CHANNELS).map((c) => c.address)
    for (const topic of built) {
      const matching = addresses.filter(
        (a) =>
          channelPattern(a).test(topic) ||
          (a.endsWith('/telemetry') && topic.startsWith(a.split('{')[0]!) && topic.includes('/telemetry/')),
      )
      expect(matching, topic).toHaveLength(1)
    }
    // an app's channels and filters are the broker's grants, class by class
    expect(Object.keys(APP_CHANNELS).sort()).toEqual([...APP_CLASSES].sort())
    for (const [cls, a] of Object.entries(APP_CHANNELS)) {
      expect(a.filters, cls).toEqual(topics.appGrants([cls as keyof typeof APP_CHANNELS]).subscribe)
      const concrete = a.filters[0]!.replace('+', 'pump-7')
      expect(channelPattern(DEVICE_CHANNELS[a.channel]!.address).test(concrete), cls).toBe(true)
    }
    // directions agree with the broker's: what it sends to devices is 'receive' for them
    for (const c of Object.values(DEVICE_CHANNELS)) {
      const parsed = topics.parseDeviceTopic(c.address.replace('{deviceId}', 'pump-7'))
      if (parsed) expect(c.action, c.address).toBe(topics.isBrokerToDeviceKind(parsed.kind) ? 'receive' : 'send')
    }
  })
})
