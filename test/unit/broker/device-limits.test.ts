import { describe, expect, it } from 'vitest'
import { applyDeviceLimits, type DeviceBuckets } from '../../../broker/device-limits.ts'
import { resolveLimits } from '../../../broker/limits.ts'
import { createKeyedTokenBuckets } from '../../../broker/token-bucket.ts'
import { fixedClock } from '../../helpers/clock.ts'

function setup() {
  const clock = fixedClock()
  const limits = resolveLimits({})
  const keyed = (o: { ratePerSecond: number; burst: number }) => createKeyedTokenBuckets({ ...o, maxKeys: 100 }, clock)
  const buckets: DeviceBuckets = {
    publishRate: keyed(limits.publishRate),
    publishBytesRate: keyed(limits.publishBytesRate),
    packetRate: keyed(limits.packetRate),
  }
  return { limits, buckets }
}

describe('applyDeviceLimits (at CONNECT)', () => {
  it('makes buckets only for the limits the tier or the device sets; the others are made by the first packet', () => {
    const { limits, buckets } = setup()
    applyDeviceLimits(buckets, limits, 'd1', {})
    expect([buckets.publishRate.size(), buckets.publishBytesRate.size(), buckets.packetRate.size()]).toEqual([0, 0, 0])
    applyDeviceLimits(buckets, limits, 'd2', { publishRate: { ratePerSecond: 3 } })
    expect([buckets.publishRate.size(), buckets.publishBytesRate.size(), buckets.packetRate.size()]).toEqual([1, 0, 0])
    expect(buckets.publishRate.optionsOf('d2')).toEqual({ ratePerSecond: 3, burst: limits.publishRate.burst })
  })

  it('puts a bucket kept from an earlier connect back on the global limits when its values are gone', () => {
    const { limits, buckets } = setup()
    applyDeviceLimits(buckets, limits, 'd1', { packetRate: { ratePerSecond: 2, burst: 4 } })
    expect(buckets.packetRate.optionsOf('d1')).toEqual({ ratePerSecond: 2, burst: 4 })
    applyDeviceLimits(buckets, limits, 'd1', {})
    expect(buckets.packetRate.optionsOf('d1')).toEqual(limits.packetRate)
  })
})
