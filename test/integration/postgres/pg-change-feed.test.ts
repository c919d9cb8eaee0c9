import { readFileSync } from 'node:fs'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { systemClock } from '../../../certs/index.ts'
import { createChangeFeed, type ChangeFeed, type Scheduler } from '../../../provisioning/events.ts'
import { createRegistryDirectory } from '../../../provisioning/registry-directory.ts'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { certificate, device } from '../../contract/registry-store.contract.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { waitFor } from '../../helpers/wait.ts'

// The change feed of two nodes on one PostgreSQL database: another node's commit reaches the feed through
// LISTEN (the feed's own poll never fires here), and after its LISTEN connection is cut the feed catches
// up by id on the reconnect, in order and exactly once; a CONNECT's catch-up reads the last event id, so it
// never waits for a notification.
const t0 = new Date('2026-01-01T00:00:00.000Z')
const log = pino({ level: 'silent' })
const available = postgresAvailable()
/** no poll on an interval: whatever a feed delivers here, LISTEN (or this node's own commit) woke it for */
const never: Scheduler = { every: () => () => {} }

describe.skipIf(!available)('the change feed on PostgreSQL (two nodes, one database)', () => {
  let server: PostgresServer
  let databases = 0

  beforeAll(async () => {
    server = await startPostgres()
    await (await PgRegistryStore.open(await server.createDatabase('migrated'))).close()
  })
  afterAll(async () => {
    await server?.stop()
  })

  async function node(url: string, options?: Parameters<typeof PgRegistryStore.open>[1]): Promise<PgRegistryStore> {
    const store = await PgRegistryStore.open(url, options)
    onTestFinished(() => store.close())
    return store
  }
  /** a started feed on `store` and the deviceIds of what it delivered, once its LISTEN is in place */
  async function watch(store: PgRegistryStore): Promise<{ feed: ChangeFeed; seen: string[] }> {
    const feed = await createChangeFeed({ store, clock: systemClock, log, scheduler: never })
    onTestFinished(() => feed.stop())
    const seen: string[] = []
    feed.onEvent((e) => seen.push('deviceId' in e ? e.deviceId : e.type))
    feed.start()
    // the only read before any event: the one LISTEN's first connect wakes
    await waitFor(() => feed.position().polledAt !== null, 10_000, 'the read after LISTEN is in place')
    return { feed, seen }
  }

  it("delivers an event another node appended as soon as it is notified, and moves this node's data version", async () => {
    const url = await server.createDatabase(`db${++databases}`, 'migrated')
    const a = await node(url)
    const b = await node(url)
    const { feed, seen } = await watch(b)
    const v0 = await b.dataVersion()
    expect(await b.dataVersion()).toBe(v0) // nothing committed: stable, so a CONNECT reads no events
    expect(await feed.catchUp()).toBe(0)

    await a.appendEvent('device.revoked', { deviceId: 'pump-1' }, t0)
    await waitFor(
      () => seen.length === 1,
      10_000,
      () => `node B's feed to deliver node A's event (seen ${JSON.stringify(seen)})`,
    )
    expect(seen).toEqual(['pump-1'])
    expect(await b.dataVersion()).not.toBe(v0)
    expect(await feed.catchUp()).toBe(0) // delivered already
  })

  it('delivers, after its LISTEN connection was cut, what another node appended meanwhile: in order, exactly once', async () => {
    const url = await server.createDatabase(`db${++databases}`, 'migrated')
    const name = url.slice(url.lastIndexOf('/') + 1)
    const timers = fakeTimers(fixedClock()) // LISTEN's reconnect waits until the test lets it
    const a = await node(url)
    const b = await node(url, { applicationName: 'node-b', timers })
    const { seen } = await watch(b)
    await a.appendEvent('device.revoked', { deviceId: 'e1' }, t0)
    await waitFor(() => seen.length === 1, 10_000, 'e1, with LISTEN in place')

    const [pid] = await server.backendPids(name, 'node-b-listen')
    expect(pid).toBeDefined()
    await server.terminate([pid!])
    await waitFor(() => timers.pending() === 1, 10_000, 'node B to notice its LISTEN is gone (its reconnect scheduled)')
    const v = await b.dataVersion()
    expect(await b.dataVersion()).toBe(v) // nothing committed
    await a.appendEvent('device.disabled', { deviceId: 'e2' }, t0)
    expect(await b.dataVersion()).not.toBe(v) // no notification can reach node B: it moves all the same
    await a.transaction(async () => {
      await a.appendEvent('device.enabled', { deviceId: 'e3' }, t0)
      await a.appendEvent('device.updated', { deviceId: 'e4' }, t0)
    })
    expect(seen).toEqual(['e1']) // no poll on an interval, and no notification reached node B

    await timers.advance('5s') // the reconnect
    await waitFor(
      () => seen.length >= 4,
      10_000,
      () => `the catch-up by id after the reconnect (seen ${JSON.stringify(seen)})`,
    )
    const [newPid] = await server.backendPids(name, 'node-b-listen')
    expect(newPid).not.toBe(pid)
    await a.appendEvent('device.revoked', { deviceId: 'e5' }, t0) // a marker on the new connection
    await waitFor(() => seen.includes('e5'), 10_000, 'e5, notified on the new LISTEN connection')
    expect(seen).toEqual(['e1', 'e2', 'e3', 'e4', 'e5'])
  })

  it("stops LISTEN when the feed stops, and a node nobody watches still reads another node's commit at its next catch-up", async () => {
    const url = await server.createDatabase(`db${++databases}`, 'migrated')
    const name = url.slice(url.lastIndexOf('/') + 1)
    const a = await node(url)
    const b = await node(url, { applicationName: 'node-b' })
    const { feed, seen } = await watch(b)
    expect(await server.backendPids(name, 'node-b-listen')).toHaveLength(1)
    feed.stop()
    await waitFor(async () => (await server.backendPids(name, 'node-b-listen')).length === 0, 10_000, 'the LISTEN connection closed')
    expect(await feed.catchUp()).toBe(0)
    await a.appendEvent('device.revoked', { deviceId: 'e1' }, t0)
    expect(await feed.catchUp()).toBe(1)
    expect(seen).toEqual(['e1'])
  })

  it("refuses a CONNECT on node B made right after node A's revocation committed, while B's notification is held back", async () => {
    const url = await server.createDatabase(`db${++databases}`, 'migrated')
    const name = url.slice(url.lastIndexOf('/') + 1)
    const a = await node(url)
    const b = await node(url, { applicationName: 'node-b' })
    const { feed, seen } = await watch(b)
    const clock = fixedClock('2026-06-01T00:00:00Z')
    const directory = createRegistryDirectory({ store: b, feed, clock, log })
    await a.transaction(async () => {
      await a.insertDevice(device('pump-1'))
      await a.insertCertificate(certificate('01', 'pump-1'))
      await a.appendEvent('device.created', { deviceId: 'pump-1' }, t0)
    })
    const identity = { commonName: 'pump-1', deviceId: 'pump-1', serial: '01', fingerprint: 'fp-01', notBefore: t0, notAfter: t0 }
    await waitFor(() => seen.length === 1, 10_000, "node A's device.created on node B")
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'active' }) // cached on node B now

    // node B's LISTEN backend stopped: a notification to it waits in the server until it runs again, as on a
    // slow or half-open connection, and its client still believes LISTEN is in place
    const [pid] = await server.backendPids(name, 'node-b-listen')
    const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
    process.kill(pid!, 'SIGSTOP')
    try {
      await waitFor(() => state() === 'T', 10_000, "node B's LISTEN backend stopped")
      await a.transaction(async () => {
        await a.updateDeviceStatus('pump-1', 'revoked', clock.now())
        await a.appendEvent('device.revoked', { deviceId: 'pump-1' }, clock.now())
      })
      expect(seen).toEqual(['pump-1']) // no notification reached node B
      expect(await directory.lookup(identity)).toMatchObject({ kind: 'refused', reason: 'revoked' })
      expect(seen).toEqual(['pump-1', 'pump-1']) // the CONNECT's catch-up delivered the revocation (node B closes its sessions)
    } finally {
      process.kill(pid!, 'SIGCONT')
    }
  })
})
