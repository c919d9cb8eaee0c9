import { describe, expect, it } from 'vitest'
import { trackPresence } from '../../../broker/presence.ts'
import { startCore } from '../../helpers/broker-harness.ts'

describe('trackPresence (what the HTTP API shows of who is connected)', () => {
  it('says a device is connected and seen now while its session is up, and when it left after it disconnects', async () => {
    const h = await startCore()
    h.device('pump-7', 'aa01')
    const presence = trackPresence(h.core, h.clock)
    expect(presence.isConnected('pump-7')).toBe(false)
    expect(presence.lastSeen('pump-7')).toBeNull()

    const connected = new Promise<void>((resolve) => h.core.onDeviceConnect(() => resolve()))
    const a = await h.connect({ clientId: 'pump-7', serial: 'aa01' })
    await connected
    expect(presence.isConnected('pump-7')).toBe(true)
    h.clock.advance('5m')
    expect(presence.lastSeen('pump-7')).toEqual(h.clock.now()) // connected: seen now

    const leftAt = h.clock.advance('1m')
    const disconnected = new Promise<void>((resolve) => h.core.onDeviceDisconnect(() => resolve()))
    a.client.end()
    await disconnected
    h.clock.advance('1h')
    expect(presence.isConnected('pump-7')).toBe(false)
    expect(presence.lastSeen('pump-7')).toEqual(leftAt)
    expect(presence.lastSeen('valve-1')).toBeNull() // never seen by this process
  })
})
