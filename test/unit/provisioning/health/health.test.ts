import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createHealth, type HealthCheck } from '../../../../provisioning/health/health.ts'
import { caCheck, changeFeedCheck, databaseCheck } from '../../../../provisioning/health/control-plane-checks.ts'
import { eventLoopCheck, monitorEventLoop } from '../../../../provisioning/health/event-loop.ts'
import { createChangeFeed, type Scheduler } from '../../../../provisioning/events.ts'
import { StoreWriteFailed } from '../../../../provisioning/errors.ts'
import { InMemoryRegistryStore } from '../../../../provisioning/store/in-memory-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { fakeTimers } from '../../../helpers/fake-timers.ts'
import { makeTestCa } from '../../../helpers/test-ca.ts'
import { waitFor } from '../../../helpers/wait.ts'

const log = pino({ level: 'silent' })
const ok: HealthCheck = async () => {}

describe('createHealth', () => {
  it('names every check with ok or failed, the code and a reason, and fails the report when one fails', async () => {
    const health = createHealth(
      { liveness: { eventLoop: ok }, readiness: { database: ok, feed: () => Promise.reject(new StoreWriteFailed('SQLITE_BUSY')) } },
      { log },
    )
    expect(await health.liveness()).toEqual({ status: 'ok', checks: { eventLoop: { status: 'ok' } } })
    const ready = await health.readiness()
    expect(ready.status).toBe('failed')
    expect(ready.checks.database).toEqual({ status: 'ok' })
    expect(ready.checks.feed).toMatchObject({
      status: 'failed',
      code: 'GH_STORE_WRITE_FAILED',
      reason: expect.stringContaining('SQLITE_BUSY'),
    })
  })

  it('reports an uncoded error as GH_HEALTH_CHECK_FAILED without its message', async () => {
    const health = createHealth({ liveness: {}, readiness: { ca: () => Promise.reject(new Error('secret /etc/key')) } }, { log })
    const { checks } = await health.readiness()
    expect(checks.ca).toMatchObject({ status: 'failed', code: 'GH_HEALTH_CHECK_FAILED' })
    expect(JSON.stringify(checks)).not.toContain('secret')
  })

  it('fails a check that does not answer within its timeout, without waiting for it', async () => {
    const clock = fixedClock()
    const timers = fakeTimers(clock)
    const hung: HealthCheck = () => new Promise(() => {})
    const health = createHealth({ liveness: {}, readiness: { mqtt: hung, database: ok } }, { log, timers }, { timeoutMs: 500 })
    const report = health.readiness()
    await timers.advance('500ms')
    expect(await report).toEqual({
      status: 'failed',
      checks: {
        mqtt: { status: 'failed', code: 'GH_HEALTH_TIMEOUT', reason: expect.stringContaining('500 ms') },
        database: { status: 'ok' },
      },
    })
  })

  it('runs the checks once for concurrent requests and reuses the report for cacheMs', async () => {
    const clock = fixedClock()
    const timers = fakeTimers(clock)
    let runs = 0
    const counted: HealthCheck = async () => void runs++
    const health = createHealth({ liveness: {}, readiness: { database: counted } }, { log, timers }, { cacheMs: 1000 })
    await Promise.all([health.readiness(), health.readiness(), health.readiness()])
    expect(runs).toBe(1)
    await timers.advance('999ms')
    await health.readiness()
    expect(runs).toBe(1)
    await timers.advance('1ms')
    await health.readiness()
    expect(runs).toBe(2)
  })
})

describe('the control plane checks', () => {
  it('database: passes on a writable store and fails with its write error', async () => {
    const clock = fixedClock()
    const store = new InMemoryRegistryStore()
    await databaseCheck(store, clock)()
    expect(await store.getMeta('health.probedAt')).toBe(clock.now().toISOString())
    const locked = {
      probeWrite: () => {
        throw new StoreWriteFailed('SQLITE_BUSY')
      },
    }
    await expect(databaseCheck(locked, clock)()).rejects.toMatchObject({ code: 'GH_STORE_WRITE_FAILED' })
  })

  it('ca: passes while the issuing CA is valid and its key signs for it; fails when expired or the key is not its own', async () => {
    const ca = await makeTestCa()
    const other = await makeTestCa({ keyAlgorithm: 'p256', name: 'Other' })
    const clock = fixedClock('2026-06-01T00:00:00Z')
    await caCheck({ signingCa: async () => ca }, clock)()
    clock.set('2040-01-01T00:00:00Z')
    await expect(caCheck({ signingCa: async () => ca }, clock)()).rejects.toMatchObject({ code: 'GH_CA_ISSUER_EXPIRED' })
    clock.set('2026-06-01T00:00:00Z')
    const swapped = { ...ca, issuing: { certificate: ca.issuing.certificate, privateKey: other.issuing.privateKey } }
    await expect(caCheck({ signingCa: async () => swapped }, clock)()).rejects.toMatchObject({ code: 'GH_CA_KEY_UNUSABLE' })
  })

  it('change feed: fails when stopped, or when its last successful poll (or its start) is older than five intervals (at least 2 s)', async () => {
    const clock = fixedClock()
    let tick: () => unknown = () => {}
    const scheduler: Scheduler = {
      every: (_ms, fn) => {
        tick = fn
        return () => {}
      },
    }
    const feed = await createChangeFeed({ store: new InMemoryRegistryStore(), clock, log, scheduler }, { intervalMs: 1000 })
    const check = changeFeedCheck(feed, clock)
    await expect(check()).rejects.toMatchObject({ code: 'GH_HEALTH_FEED_STALLED', message: expect.stringContaining('stopped') })
    feed.start()
    await check() // just started
    clock.advance('5001ms')
    await expect(check()).rejects.toMatchObject({ code: 'GH_HEALTH_FEED_STALLED' }) // and never polled
    await tick()
    await check()
    clock.advance('5s')
    await check()
    clock.advance('1ms')
    await expect(check()).rejects.toMatchObject({ code: 'GH_HEALTH_FEED_STALLED', message: expect.stringContaining('5001 ms') })
    await tick()
    await check()
  })
})

describe('the event-loop check', () => {
  /** Looks until the check gives the outcome wanted (an error, or none), through the one wait helper. */
  async function lookUntil(check: HealthCheck, failed: boolean): Promise<unknown> {
    const outcome = await waitFor(
      () =>
        check().then(
          () => (failed ? null : { err: undefined }),
          (err: unknown) => (failed ? { err } : null),
        ),
      2000,
      `the event-loop check to ${failed ? 'fail' : 'pass'}`,
      10,
    )
    return outcome.err
  }

  it('fails when the loop was blocked longer than the bound since the last look, and passes again after', async () => {
    const monitor = monitorEventLoop(10)
    try {
      const check = eventLoopCheck(monitor, 100)
      const until = performance.now() + 250
      while (performance.now() < until) {} // block the loop (bounded): what a long synchronous task does
      expect(await lookUntil(check, true)).toMatchObject({ code: 'GH_HEALTH_EVENT_LOOP_DELAYED' })
      await lookUntil(check, false)
    } finally {
      monitor.stop()
    }
  })
})
