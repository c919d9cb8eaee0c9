import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cryptoRandom, identityFromCertificate } from '../../../certs/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createChangeFeed, type ChangeFeed } from '../../../provisioning/events.ts'
import { createMetrics } from '../../../provisioning/metrics/index.ts'
import { createRegistryDirectory, type RegistryDirectory } from '../../../provisioning/registry-directory.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { deviceDirectoryContract, NOW } from '../../contract/device-directory.contract.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'
import { registryDirectoryFixture } from '../../helpers/registry-directory-fixture.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

// The registry's directory on a real SQLite registry (test/helpers/registry-directory-fixture.ts).
deviceDirectoryContract('the registry directory on SQLite', async () => {
  const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
  onTestFinished(() => store.close())
  return registryDirectoryFixture(store)
})

describe('the registry directory and device.updated', () => {
  it('drops its cached answer for a device when its group or tier changes, so the next connect sees the new tier', async () => {
    const clock = fixedClock(NOW)
    const log = pino({ level: 'silent' })
    const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
    onTestFinished(() => store.close())
    const feed = await createChangeFeed({ store, clock, log })
    const directory = createRegistryDirectory({ store, feed, clock, log })
    const authority = createDeviceAuthority({ store, ca: await makeTestCa(), clock, random: cryptoRandom, log })
    const issued = await authority.createDevice({ id: 'pump-1', group: 'g1' }, 'op')
    const identity = await identityFromCertificate(issued.certificateDer)
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'active', tier: 'standard', group: 'g1' })
    await authority.updateDevice('pump-1', { tier: 'premium', group: 'g2' }, 'op')
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'active', tier: 'premium', group: 'g2' })
  })
})

describe('the registry directory on an async registry', () => {
  it('caches nothing a lookup read while an event about its device overtook it: the next connect reads the change', async () => {
    const clock = fixedClock(NOW)
    const log = pino({ level: 'silent' })
    const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
    onTestFinished(() => store.close())
    const authority = createDeviceAuthority({ store, ca: await makeTestCa(), clock, random: cryptoRandom, log })
    const issued = await authority.createDevice({ id: 'pump-1' }, 'op')
    const identity = await identityFromCertificate(issued.certificateDer)
    // the registry answers a certificate read only when released, as PostgreSQL answers after a round trip
    let read = () => {}
    const readDone = new Promise<void>((resolve) => (read = resolve))
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const remote = new Proxy(store, {
      get(target, key) {
        if (key === 'getCredential')
          return async (fingerprint: string) => {
            const cert = await target.getCredential(fingerprint)
            read()
            await released
            return cert
          }
        const value: unknown = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const feed = await createChangeFeed({ store, clock, log })
    const directory = createRegistryDirectory({ store: remote, feed, clock, log })

    const first = directory.lookup(identity)
    await readDone
    await store.transaction(async () => {
      await store.updateCertificate(issued.serial, { status: 'revoked', revokedAt: clock.now(), revocationReason: 'keyCompromise' })
      await store.appendEvent('certificate.revoked', { deviceId: 'pump-1', serial: issued.serial }, clock.now())
    })
    await feed.catchUp() // the event reaches the directory while the first lookup's read is still on its way
    release()
    await first
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'refused', reason: 'revoked' })
  })
})

/** The collector's sources with this directory, store and feed; no broker (nothing connected), as gatehouse.ts wires them. */
function metricsSourcesOf(
  directory: RegistryDirectory,
  store: SqliteRegistryStore,
  feed: ChangeFeed,
  clock: ReturnType<typeof fixedClock>,
) {
  return {
    broker: {
      connectedDeviceIds: () => [],
      stats: () => ({
        accepted: { device: 0, claim: 0 },
        refused: new Map(),
        tlsFailures: new Map(),
        publishesIn: {},
        messagesOut: {},
        limitHits: new Map(),
      }),
      sessionStats: () => ({ queuedMessages: 0, queuedBytes: 0, droppedMessages: 0, refusedInbound: 0 }),
    },
    controlLimitHits: () => ({}),
    feed,
    registry: store,
    settings: { syncCounts: async () => ({ inSync: 0, outOfSync: 0 }) },
    lookups: directory.latency,
    auditsDropped: directory.auditsDropped,
    caCertificates: () => [],
    clock,
    build: { version: '0.0.0' },
  }
}

describe('the registry directory audit writes', () => {
  it('holds at most maxPendingAudits unfinished audit writes: past them a record is dropped and logged, the held ones land in order', async () => {
    const clock = fixedClock(NOW)
    const lines: { msg: string; dropped?: number }[] = []
    const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
    onTestFinished(() => store.close())
    // a registry that stops answering (a database outage): its audit writes wait until released
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const stalled = new Proxy(store, {
      get(target, key) {
        if (key === 'appendAudit')
          return async (entry: Parameters<SqliteRegistryStore['appendAudit']>[0]) => {
            await released
            return target.appendAudit(entry)
          }
        const value: unknown = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const feed = await createChangeFeed({ store, clock, log })
    const directory = createRegistryDirectory({ store: stalled, feed, clock, log }, { maxPendingAudits: 3 })
    for (let n = 1; n <= 5; n++) directory.audit({ actor: 'broker', action: 'session.opened', subject: `dev-${n}` })
    expect(lines.filter((l) => l.msg.startsWith('audit record dropped')).map((l) => l.dropped)).toEqual([1]) // once, with the count
    expect(directory.auditsDropped()).toBe(2) // and counted: gatehouse_audit_dropped_total
    // the 1,001st drop is logged again, and each is counted
    for (let n = 6; n <= 1004; n++) directory.audit({ actor: 'broker', action: 'session.opened', subject: `dev-${n}` })
    expect(lines.filter((l) => l.msg.startsWith('audit record dropped')).map((l) => l.dropped)).toEqual([1, 1001])
    expect(directory.auditsDropped()).toBe(1001)
    const metrics = createMetrics(metricsSourcesOf(directory, store, feed, clock))
    expect((await metrics.render()).split('\n')).toContain('gatehouse_audit_dropped_total 1001')
    release()
    await waitFor(async () => (await store.listAudit()).length === 3, 5000, 'the three held audit records')
    expect((await store.listAudit()).map((e) => e.subject).sort()).toEqual(['dev-1', 'dev-2', 'dev-3'])
    directory.audit({ actor: 'broker', action: 'session.opened', subject: 'dev-last' }) // room again once they landed
    await waitFor(async () => (await store.listAudit()).some((e) => e.subject === 'dev-last'), 5000, 'a record after the held ones landed')
    expect(directory.auditsDropped()).toBe(1001)
  })
})
