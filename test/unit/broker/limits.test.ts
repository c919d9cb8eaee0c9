import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, resolveLimits } from '../../../broker/limits.ts'
import { createConnectionGate } from '../../../broker/connection-gate.ts'
import { toConnackCode, REASON_CODES } from '../../../broker/reason-codes.ts'
import { ConnectRateLimited, ConnectRefused, DirectoryUnavailable, PublishRateLimited } from '../../../broker/errors.ts'
import { fixedClock } from '../../helpers/clock.ts'

describe('resolveLimits', () => {
  it('fills every limit with its default', () => {
    expect(resolveLimits()).toEqual(DEFAULT_LIMITS)
    expect(Object.isFrozen(resolveLimits())).toBe(true)
  })

  it('merges nested buckets field by field', () => {
    const l = resolveLimits({ publishRate: { ratePerSecond: 5, burst: 10 }, keepaliveSeconds: { min: 0, max: 600 } })
    expect(l.publishRate).toEqual({ ratePerSecond: 5, burst: 10 })
    expect(l.keepaliveSeconds).toEqual({ min: 0, max: 600 })
    expect(l.publishBytesRate).toEqual(DEFAULT_LIMITS.publishBytesRate)
  })

  it.each([
    ['fail/zero-per-ip', { maxConnectionsPerIp: 0 }],
    ['fail/fractional-timeout', { handshakeTimeoutMs: 1.5 }],
    ['fail/keepalive-max-below-min', { keepaliveSeconds: { min: 60, max: 30 } }],
    ['fail/byte-burst-below-packet', { maxPacketBytes: 1_000_000 }],
    ['fail/negative-rate', { publishRate: { ratePerSecond: -1, burst: 5 } }],
    ['fail/claim-session-too-short', { claimSessionSeconds: 5 }],
    ['fail/claim-session-too-long', { claimSessionSeconds: 7200 }],
    ['fail/sweep-too-often', { sessionSweepMs: 10 }],
    ['fail/sweep-fractional', { sessionSweepMs: 1000.5 }],
    ['fail/zero-packet-burst', { packetRate: { ratePerSecond: 10, burst: 0 } }],
    ['fail/zero-queue', { maxQueuedMessages: 0 }],
    ['fail/queue-bytes-below-packet', { maxQueuedBytes: 1000 }],
    ['fail/zero-inflight-inbound', { maxInflightInbound: 0 }],
  ])('%s', (_name, input) => {
    expect(() => resolveLimits(input)).toThrow(expect.objectContaining({ code: 'GH_BROKER_OPTION_INVALID' }))
  })

  it('defaults claim sessions to 300 s and the session sweep to 5 s', () => {
    expect(resolveLimits()).toMatchObject({ claimSessionSeconds: 300, sessionSweepMs: 5000 })
    expect(resolveLimits({ claimSessionSeconds: 60, sessionSweepMs: 250 })).toMatchObject({ claimSessionSeconds: 60, sessionSweepMs: 250 })
  })

  it('defaults the per-device packet budget and session bounds', () => {
    expect(resolveLimits()).toMatchObject({
      packetRate: { ratePerSecond: 60, burst: 300 },
      maxQueuedMessages: 100,
      maxQueuedBytes: 1_048_576,
      maxInflightInbound: 100,
    })
    expect(resolveLimits({ packetRate: { burst: 500 } as never }).packetRate).toEqual({ ratePerSecond: 60, burst: 500 })
  })

  it('lists every problem at once', () => {
    try {
      resolveLimits({ maxConnections: 0, maxConnectionsPerIp: 0 })
      expect.unreachable()
    } catch (err) {
      expect((err as Error).message).toMatch(/maxConnections .*maxConnectionsPerIp/)
    }
  })
})

describe('createConnectionGate', () => {
  const limits = { maxConnectionsPerIp: 2, connectionRatePerIp: { ratePerSecond: 1, burst: 3 }, maxTrackedKeys: 100 }

  it('admits up to maxConnectionsPerIp open connections per address', () => {
    const gate = createConnectionGate(limits, fixedClock())
    const a = gate.admit('10.0.0.1')
    const b = gate.admit('10.0.0.1')
    expect([a.ok, b.ok]).toEqual([true, true])
    expect(gate.admit('10.0.0.1')).toEqual({ ok: false, reason: 'too-many-connections' })
    expect(gate.admit('10.0.0.2').ok).toBe(true)
    if (a.ok) {
      a.release()
      a.release() // idempotent
    }
    expect(gate.openFrom('10.0.0.1')).toBe(1)
  })

  it('with the defaults, 10,000 devices behind one NAT reconnect within a minute (issue 10)', () => {
    const clock = fixedClock()
    const gate = createConnectionGate(DEFAULT_LIMITS, clock)
    let admitted = 0
    // 10,000 connects spread evenly over 60 s, all kept open
    for (let i = 0; i < 10_000; i++) {
      if (gate.admit('203.0.113.7').ok) admitted++
      clock.advance(6)
    }
    expect(admitted).toBe(10_000)
    expect(gate.openFrom('203.0.113.7')).toBe(10_000)
  })

  it('limits the connection rate per address with a token bucket', () => {
    const clock = fixedClock()
    const gate = createConnectionGate({ ...limits, maxConnectionsPerIp: 100 }, clock)
    const results = Array.from({ length: 4 }, () => gate.admit('10.0.0.1').ok)
    expect(results).toEqual([true, true, true, false])
    expect(gate.admit('10.0.0.1')).toEqual({ ok: false, reason: 'connection-rate' })
    clock.advance('1s')
    expect(gate.admit('10.0.0.1').ok).toBe(true)
  })
})

describe('toConnackCode', () => {
  it.each([
    ['refusal', new ConnectRefused('revoked'), 5],
    ['directory down', new DirectoryUnavailable(), 3],
    ['reconnect loop: back off', new ConnectRateLimited('d'), 3],
    ['no 3.1.1 code: not authorized', new PublishRateLimited('d', 'messages'), 5],
    ['unknown error: fail closed', new Error('boom'), 5],
  ])('%s', (_name, err, code) => {
    expect(toConnackCode(err)).toBe(code)
  })

  it('keeps the MQTT 5 codes for later', () => {
    expect(REASON_CODES.notAuthorized.v5).toBe(0x87)
    expect(REASON_CODES.quotaExceeded.v5).toBe(0x97)
    expect(REASON_CODES.administrativeAction.v5).toBe(0x98)
  })
})
