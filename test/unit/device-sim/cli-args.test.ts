import { describe, expect, it } from 'vitest'
import { parseDuration, simIds } from '../../../device-sim/cli.ts'
import { parseBrokerUrl } from '../../../device-sim/mqtt-session.ts'

describe('gatehouse sim arguments', () => {
  it.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['250ms', 250],
    ['12', 12_000],
    ['1.5s', 1500],
  ])('--duration %s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms))

  it.each(['', '0', '-1s', '5d', 'soon'])('refuses --duration %j as a usage error', (text) => {
    expect(() => parseDuration(text)).toThrow(expect.objectContaining({ code: 'commander.invalidArgument' }))
  })

  it('numbers devices <prefix>0001.. with at least four digits', () => {
    expect(simIds(3, 'sim-')).toEqual(['sim-0001', 'sim-0002', 'sim-0003'])
    expect(simIds(12_000, 'x').at(-1)).toBe('x12000')
    expect(simIds(12_000, 'x')[0]).toBe('x00001')
  })

  it('reads mqtts://HOST:PORT, verifying the host name unless it is an IP', () => {
    expect(parseBrokerUrl('mqtts://localhost:8883')).toMatchObject({ host: 'localhost', port: 8883, servername: 'localhost' })
    expect(parseBrokerUrl('mqtts://broker.example.com')).toMatchObject({ host: 'broker.example.com', port: 8883 })
    const ip = parseBrokerUrl('mqtts://127.0.0.1:1883')
    expect(ip).toMatchObject({ host: '127.0.0.1', port: 1883 })
    expect(ip.servername).toBeUndefined()
    expect(parseBrokerUrl('mqtts://[::1]:8883')).toMatchObject({ host: '::1', port: 8883 })
  })

  it.each(['mqtt://localhost:1883', 'localhost:8883', 'https://x', 'mqtts://u:p@host:1', 'mqtts://host/path'])(
    'refuses broker URL %s (GH_SIM_BROKER_URL_INVALID)',
    (url) => {
      expect(() => parseBrokerUrl(url)).toThrow(expect.objectContaining({ code: 'GH_SIM_BROKER_URL_INVALID' }))
    },
  )
})
