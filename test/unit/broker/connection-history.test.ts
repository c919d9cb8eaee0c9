import { describe, expect, it } from 'vitest'
import { trackConnectionHistory } from '../../../broker/connection-history.ts'
import { startCore, type CoreHarness } from '../../helpers/broker-harness.ts'

/** Connects as a device and resolves once the broker reported the connect. */
async function connected(h: CoreHarness, clientId: string, serial: string, remoteAddress = '10.0.0.7') {
  const seen = new Promise<void>((resolve) => {
    const off = h.core.onDeviceConnect((c) => c.deviceId === clientId && (off(), resolve()))
  })
  const { client } = await h.connect({ clientId, serial, remoteAddress })
  await seen
  return client
}

/** Resolves once the broker reported a disconnect of this device. */
const disconnected = (h: CoreHarness, deviceId: string) =>
  new Promise<void>((resolve) => {
    const off = h.core.onDeviceDisconnect((c) => c.deviceId === deviceId && (off(), resolve()))
  })

describe('trackConnectionHistory (the device page: its last connects and disconnects)', () => {
  it('records each connect and disconnect with time, address, serial and the reason, newest first', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    const history = trackConnectionHistory(h.core, h.clock)
    const first = await connected(h, 'pump-7', 'aa01', '10.0.0.7')
    h.clock.advance('1m')
    let left = disconnected(h, 'pump-7')
    first.end()
    await left
    h.clock.advance('1m')
    await connected(h, 'pump-7', 'aa01', '10.0.0.8')
    h.clock.advance('1m')
    left = disconnected(h, 'pump-7')
    expect(h.core.disconnectDevice('pump-7', 'disabled')).toBe(true)
    await left
    expect(history.history('pump-7')).toEqual([
      { at: '2026-01-01T00:03:00.000Z', event: 'disconnect', remoteAddress: '10.0.0.8', serial: 'aa01', reason: 'disabled' },
      { at: '2026-01-01T00:02:00.000Z', event: 'connect', remoteAddress: '10.0.0.8', serial: 'aa01', reason: null },
      { at: '2026-01-01T00:01:00.000Z', event: 'disconnect', remoteAddress: '10.0.0.7', serial: 'aa01', reason: 'client' },
      { at: '2026-01-01T00:00:00.000Z', event: 'connect', remoteAddress: '10.0.0.7', serial: 'aa01', reason: null },
    ])
    expect(history.history('valve-1')).toEqual([])
  })

  it('keeps perDevice events per device and forgets the least recently active device past maxDevices', async () => {
    const h = await startCore()
    for (const id of ['a', 'b', 'c']) h.device(id, `${id}0`)
    const history = trackConnectionHistory(h.core, h.clock, { perDevice: 3, maxDevices: 2 })
    for (let i = 0; i < 2; i++) {
      const left = disconnected(h, 'a')
      ;(await connected(h, 'a', 'a0')).end()
      await left
    }
    expect(history.history('a').map((e) => e.event)).toEqual(['disconnect', 'connect', 'disconnect']) // 4 events, 3 kept
    await connected(h, 'b', 'b0')
    await connected(h, 'a', 'a0') // 'a' is the most recently active again: 'b' goes next
    await connected(h, 'c', 'c0')
    expect(history.history('b')).toEqual([])
    expect(history.history('a')).toHaveLength(3)
    expect(history.history('c')).toHaveLength(1)
    history.close()
  })
})
