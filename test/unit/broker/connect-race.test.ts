import { describe, expect, it } from 'vitest'
import type { DeviceLimitsSource, DeviceLimitValues } from '../../../broker/device-limits.ts'
import { startCore } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'

// A control event that arrives while a device's CONNECT is being looked up (docs/architecture.md, "The
// change feed"): the answer may predate it, so the broker reads the device again before it registers the
// session. One mechanism for every event about a device: revocation refuses, a new group, tier or limits
// is what the new session gets. Each test holds the read open, makes the change and its event, then lets
// the stale answer through.

const SERIAL = 'aa01'

/** The device's tier and group from the fake directory, each tier's limits from `tiers`; reads can be held open. */
function heldLimits(h: Awaited<ReturnType<typeof startCore>>['directory'], tiers: Map<string, DeviceLimitValues>) {
  let hold: Promise<void> | null = null
  const reads: string[] = []
  const source: DeviceLimitsSource = {
    async limitsOf(deviceId) {
      reads.push(deviceId)
      const device = h.devices.get(deviceId)
      // answered before the hold: what a slow registry read returns is what it saw when it ran
      const answer = device ? { tier: device.tier, group: device.group, broker: tiers.get(device.tier) ?? {} } : null
      if (hold) await hold
      return answer
    },
  }
  const holdReads = () => {
    let release!: () => void
    hold = new Promise<void>((r) => (release = r))
    return () => {
      hold = null
      release()
    }
  }
  return { source, reads, holdReads }
}

async function harness() {
  const tiers = new Map<string, DeviceLimitValues>([['standard', { packetRate: { ratePerSecond: 1, burst: 5 } }]])
  let limits!: ReturnType<typeof heldLimits>
  const h = await startCore({ limitsSource: { limitsOf: (id) => limits.source.limitsOf(id) } })
  limits = heldLimits(h.directory, tiers)
  const device = h.directory.addDevice('pump-7', { group: 'pumps', tier: 'standard' })
  h.directory.addCertificate('pump-7', SERIAL)
  return { h, tiers, limits, device }
}

/** Sends n PINGREQs and resolves with how many PINGRESPs came before the connection closed. */
async function pings(client: Awaited<ReturnType<Awaited<ReturnType<typeof startCore>>['connect']>>['client'], n: number) {
  for (let i = 0; i < n; i++) client.send({ cmd: 'pingreq' })
  let answered = 0
  while (answered < n) {
    const packet = await Promise.race([client.next().catch(() => null), client.closed.then(() => null)])
    if (packet === null) break
    if (packet.cmd === 'pingresp') answered++
  }
  return answered
}

describe('an event about a device while its CONNECT is looked up', () => {
  it('device.updated (a new group): the session gets the new group, not the one the held lookup read', async () => {
    const { h, device } = await harness()
    const release = h.directory.holdLookups()
    const connecting = h.connect({ clientId: 'pump-7', serial: SERIAL })
    await waitFor(() => h.directory.lookups.length === 1, 2000, 'the lookup')
    device.group = 'valves'
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-7' })
    release()
    expect((await connecting).connack).toMatchObject({ returnCode: 0 })
    expect(h.core.connection('pump-7')).toMatchObject({ group: 'valves' })
    expect(h.directory.lookups).toHaveLength(2)
  })

  it('tier.updated (new limits for its tier): the session gets the new limits, not the ones the held read returned', async () => {
    const { h, tiers, limits } = await harness()
    const release = limits.holdReads()
    const connecting = h.connect({ clientId: 'pump-7', serial: SERIAL })
    await waitFor(() => limits.reads.length === 1, 2000, 'the limits read')
    tiers.set('standard', { packetRate: { ratePerSecond: 1, burst: 50 } })
    h.directory.emit({ type: 'tier.updated', tier: 'standard' })
    release()
    const { client, connack } = await connecting
    expect(connack).toMatchObject({ returnCode: 0 })
    // 10 packets: over the old burst of 5, within the new one of 50
    expect(await pings(client, 10)).toBe(10)
  })

  it("device.updated (its tier changed): the session gets its new tier and that tier's limits", async () => {
    const { h, tiers, limits, device } = await harness()
    tiers.set('gold', { packetRate: { ratePerSecond: 1, burst: 50 } })
    const release = limits.holdReads()
    const connecting = h.connect({ clientId: 'pump-7', serial: SERIAL })
    await waitFor(() => limits.reads.length === 1, 2000, 'the limits read')
    device.tier = 'gold'
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-7' })
    release()
    const { client, connack } = await connecting
    expect(connack).toMatchObject({ returnCode: 0 })
    expect(h.core.connection('pump-7')).toMatchObject({ tier: 'gold' })
    expect(await pings(client, 10)).toBe(10)
  })

  it('an event about another device changes nothing: one lookup, the answer as read', async () => {
    const { h } = await harness()
    h.directory.addCertificate('pump-8', 'aa02')
    const release = h.directory.holdLookups()
    const connecting = h.connect({ clientId: 'pump-7', serial: SERIAL })
    await waitFor(() => h.directory.lookups.length === 1, 2000, 'the lookup')
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-8' })
    release()
    expect((await connecting).connack).toMatchObject({ returnCode: 0 })
    expect(h.directory.lookups).toHaveLength(1)
  })
})

describe("an event about a connected device while its session's limits are read again", () => {
  const applied = (h: Awaited<ReturnType<typeof startCore>>) => h.logs.filter((r) => r.msg === 'device limits applied').length

  it('two device.updated whose reads answer out of order: the session keeps what the later read saw', async () => {
    const { h, tiers, limits, device } = await harness()
    tiers.set('gold', { packetRate: { ratePerSecond: 1, burst: 50 } })
    const { connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(connack).toMatchObject({ returnCode: 0 })
    const releaseFirst = limits.holdReads()
    device.tier = 'gold'
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-7' })
    await waitFor(() => limits.reads.length === 2, 2000, 'the first re-read')
    const releaseSecond = limits.holdReads()
    device.tier = 'standard'
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-7' })
    await waitFor(() => limits.reads.length === 3, 2000, 'the second re-read')
    releaseSecond()
    await waitFor(() => applied(h) === 1, 2000, 'the second read applied')
    releaseFirst() // answers last, with what it saw before the second change
    // its answer is not applied: the next event's read, answered after it, is the positive marker
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-7' })
    await waitFor(() => applied(h) >= 2, 2000, 'a later read applied')
    expect(h.logs.filter((r) => r.msg === 'device limits applied').map((r) => r.tier)).toEqual(['standard', 'standard'])
    expect(h.core.connection('pump-7')).toMatchObject({ tier: 'standard' })
  })

  it("tier.updated for the tier a pending re-read is about to give the session: the session gets that tier's new limits", async () => {
    const { h, tiers, limits, device } = await harness()
    tiers.set('standard', { packetRate: { ratePerSecond: 1, burst: 50 } })
    tiers.set('gold', { packetRate: { ratePerSecond: 1, burst: 50 } })
    const { client, connack } = await h.connect({ clientId: 'pump-7', serial: SERIAL })
    expect(connack).toMatchObject({ returnCode: 0 })
    const release = limits.holdReads()
    device.tier = 'gold'
    h.directory.emit({ type: 'device.updated', deviceId: 'pump-7' })
    await waitFor(() => limits.reads.length === 2, 2000, 'the re-read')
    // the session's tier is still 'standard' while the read is held: this event must not pass it by
    tiers.set('gold', { packetRate: { ratePerSecond: 1, burst: 3 } })
    h.directory.emit({ type: 'tier.updated', tier: 'gold' })
    release()
    await waitFor(() => h.logs.some((r) => r.msg === 'device limits applied'), 2000, 'the limits applied')
    expect(h.core.connection('pump-7')).toMatchObject({ tier: 'gold' })
    // gold's new burst of 3, not the 50 the held read returned
    expect(await pings(client, 10)).toBeLessThan(10)
  })
})
