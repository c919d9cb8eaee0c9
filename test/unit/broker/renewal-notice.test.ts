import pino from 'pino'
import { describe, expect, it } from 'vitest'
import type { DeviceConnection, DeviceSubscribe } from '../../../broker/create-mqtt-core.ts'
import { attachRenewalNotices } from '../../../broker/renewal-notice.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'

const DAY = 86_400_000

/** The four core methods the notices use, recorded: subscribes and disconnects are driven by the test. */
function recordingCore() {
  const subscribe = new Set<(s: DeviceSubscribe) => void>()
  const disconnect = new Set<(c: DeviceConnection & { reason: string }) => void>()
  const sent: { topic: string; body: Record<string, string> }[] = []
  const live = new Set<number>()
  return {
    sent,
    live,
    core: {
      onDeviceSubscribe: (l: (s: DeviceSubscribe) => void) => (subscribe.add(l), () => void subscribe.delete(l)),
      onDeviceDisconnect: (l: (c: DeviceConnection & { reason: string }) => void) => (disconnect.add(l), () => void disconnect.delete(l)),
      isSessionLive: (id: number) => live.has(id),
      publishToDevice: async (topic: string, payload: Buffer | Uint8Array | string) =>
        void sent.push({ topic, body: JSON.parse(String(payload)) as Record<string, string> }),
    },
    subscribe: (s: DeviceSubscribe) => {
      for (const l of subscribe) l(s)
    },
    disconnect: (sessionId: number) => {
      for (const l of disconnect)
        l({ deviceId: 'pump-7', sessionId, serial: 'a1', tier: 'standard', group: null, remoteAddress: null, reason: 'client' })
    },
  }
}

describe('renewal notices', () => {
  const clock = fixedClock('2026-06-01T00:00:00Z')
  const notBefore = new Date(clock.now().getTime() - 200 * DAY)
  const notAfter = new Date(notBefore.getTime() + 300 * DAY) // its window (the last third) opens on day 200
  const windowOpens = (c: { notBefore: Date; notAfter: Date }) =>
    new Date(c.notAfter.getTime() - (c.notAfter.getTime() - c.notBefore.getTime()) / 3)
  const certificate = { serial: 'a1', notBefore, notAfter }
  const subscription = (sessionId: number, topic = 'devices/pump-7/renewal/notice'): DeviceSubscribe => ({
    deviceId: 'pump-7',
    sessionId,
    filters: [{ topic, qos: 1 }],
    certificate,
  })

  it('sends the notice when the window opens during the session, once, with its end and notAfter', async () => {
    const c = fixedClock(new Date(notBefore.getTime() + 150 * DAY)) // window opens on day 200: in 50 days
    const timers = fakeTimers(c)
    const rec = recordingCore()
    rec.live.add(1)
    const off = attachRenewalNotices(rec.core, { windowOpens, clock: c, timers, log: pino({ level: 'silent' }) })
    rec.subscribe(subscription(1))
    expect(rec.sent).toEqual([])
    await timers.advance('49d')
    expect(rec.sent).toEqual([])
    await timers.advance('1d')
    expect(rec.sent).toEqual([
      {
        topic: 'devices/pump-7/renewal/notice',
        body: {
          serial: 'a1',
          windowOpensAt: windowOpens(certificate).toISOString(),
          windowEndsAt: notAfter.toISOString(),
          notAfter: notAfter.toISOString(),
        },
      },
    ])
    rec.subscribe(subscription(1)) // a repeated SUBSCRIBE in the same session sends nothing more
    await timers.advance('1d')
    expect(rec.sent).toHaveLength(1)
    expect(timers.pending()).toBe(0)
    off()
  })

  it('sends at once on subscribe when the window is open, ignores other topics, and forgets a session that ends', async () => {
    const timers = fakeTimers(clock)
    const rec = recordingCore()
    rec.live.add(1).add(2)
    attachRenewalNotices(rec.core, {
      windowOpens: () => new Date(clock.now().getTime() - 1),
      clock,
      timers,
      log: pino({ level: 'silent' }),
    })
    rec.subscribe(subscription(1, 'devices/pump-7/settings'))
    expect(rec.sent).toEqual([])
    rec.subscribe(subscription(1))
    await timers.advance(0)
    expect(rec.sent).toHaveLength(1)

    const later = recordingCore()
    later.live.add(3)
    attachRenewalNotices(later.core, {
      windowOpens: () => new Date(clock.now().getTime() + DAY),
      clock,
      timers,
      log: pino({ level: 'silent' }),
    })
    later.subscribe(subscription(3))
    expect(timers.pending()).toBe(1)
    later.disconnect(3)
    expect(timers.pending()).toBe(0)
  })
})
