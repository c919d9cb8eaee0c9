import { AsyncLocalStorage } from 'node:async_hooks'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { migrations, SCHEMA_VERSION } from '../../../provisioning/store/migrations/index.ts'
import { pgMigrations } from '../../../provisioning/store/postgres/migrations.ts'
import { KEEPALIVE_DELAY_MS, PgDatabase } from '../../../provisioning/store/postgres/pg-database.ts'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { device } from '../../contract/registry-store.contract.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { waitFor } from '../../helpers/wait.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')
const available = postgresAvailable()
let databases = 0

describe.skipIf(!available)('PgDatabase', () => {
  let server: PostgresServer

  beforeAll(async () => {
    server = await startPostgres()
    console.info(`PostgreSQL 15 start (template copy + pg_ctl start): ${Math.round(server.startMs)} ms`)
    // migrated once, then copied per test (CREATE DATABASE ... TEMPLATE): the migration tests take empty ones
    await (await PgRegistryStore.open(await server.createDatabase('migrated'))).close()
  })
  afterAll(async () => {
    await server?.stop()
  })

  /** a new empty database on the file's server */
  const emptyUrl = () => server.createDatabase(`db${++databases}`)
  /** a new database at the current schema */
  const freshUrl = () => server.createDatabase(`db${++databases}`, 'migrated')
  async function open(url: string, options?: Parameters<typeof PgRegistryStore.open>[1]): Promise<PgRegistryStore> {
    const store = await PgRegistryStore.open(url, options)
    onTestFinished(() => store.close())
    return store
  }

  it('has one PostgreSQL migration per SQLite migration, same numbers and names, and applies them all', async () => {
    expect(pgMigrations.map((m) => [m.version, m.name])).toEqual(migrations.map((m) => [m.version, m.name]))
    const store = await open(await emptyUrl())
    expect(await store.db.schemaVersion()).toBe(SCHEMA_VERSION)
  })

  it('migrates once when several nodes open a new database at the same moment (advisory lock)', async () => {
    const url = await emptyUrl()
    const stores = await Promise.all([0, 1, 2, 3].map(() => open(url, { poolSize: 2 })))
    expect(await stores[0]!.db.query('SELECT version FROM schema_version')).toEqual([{ version: SCHEMA_VERSION }])
    await stores[1]!.insertDevice(device('a'))
    expect(await stores[3]!.getDevice('a')).toEqual(device('a'))
  })

  it('refuses a database whose schema is newer than this code (GH_STORE_SCHEMA_TOO_NEW), naming it without credentials', async () => {
    const url = await emptyUrl()
    const store = await open(url)
    await store.db.query('UPDATE schema_version SET version = 999')
    await expect(PgRegistryStore.open(url)).rejects.toMatchObject({
      code: 'GH_STORE_SCHEMA_TOO_NEW',
      message: expect.stringMatching(new RegExp(`postgres://127\\.0\\.0\\.1:${server.port}/db\\d+ has schema version 999`)),
    })
  })

  it('runs every call inside transaction(fn) on its connection (any store, nested too); calls outside do not see it before COMMIT', async () => {
    const store = await open(await freshUrl())
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let inside!: () => void
    const entered = new Promise<void>((resolve) => {
      inside = resolve
    })
    const tx = store.transaction(async () => {
      await store.insertDevice(device('a'))
      await store.limits.putDevice({ key: 'a', limits: { publishRate: 5 }, updatedAt: t0, updatedBy: 'op' })
      const inner = await store.transaction(async () => {
        await store.setLabels('a', { site: 'north' })
        return store.db.query('SELECT pg_backend_pid() AS pid')
      })
      const outer = await store.db.query('SELECT pg_backend_pid() AS pid')
      expect(await store.getDevice('a')).toEqual(device('a')) // inside: sees its own writes
      inside()
      await held
      return [inner[0]?.pid, outer[0]?.pid]
    })
    await entered
    // outside the transaction (the test's own async context): another connection, which does not see it yet
    expect(store.db.inTransaction()).toBe(false)
    expect(await store.getDevice('a')).toBeUndefined()
    expect(await store.labels('a')).toEqual({})
    release()
    const pids = await tx
    expect(pids[0]).toBe(pids[1])
    expect(await store.getDevice('a')).toEqual(device('a'))
    expect(await store.labels('a')).toEqual({ site: 'north' })
    expect(await store.limits.getDevice('a')).toMatchObject({ limits: { publishRate: 5 } })
  })

  it('runs a callback made inside a transaction but called after it ended (a timer) outside it, on a connection of its own', async () => {
    const store = await open(await freshUrl())
    let later!: Promise<number>
    await store.transaction(async () => {
      await store.insertDevice(device('a'))
      later = new Promise((resolve, reject) =>
        setImmediate(() => {
          store.db.inTransaction()
            ? reject(new Error('still in the ended transaction'))
            : resolve(store.appendEvent('device.revoked', { deviceId: 'a' }, t0))
        }),
      )
    })
    expect(await later).toBe(1)
    expect((await store.eventsAfter(0, 10)).map((e) => e.type)).toEqual(['device.revoked'])
  })

  it('tracks async flows only while a transaction is open: async hooks stay on while one of two concurrent transactions is open, off after both', async () => {
    const store = await open(await freshUrl())
    const run = vi.spyOn(AsyncLocalStorage.prototype, 'run')
    /** Node 20's AsyncLocalStorage: enabled from its first run() until disable(); while any is, every async callback pays the hooks */
    let tx: { enabled?: boolean } | undefined
    const tracking = () => (tx ??= run.mock.contexts[0] as { enabled?: boolean } | undefined)?.enabled
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let inside!: () => void
    const entered = new Promise<void>((resolve) => {
      inside = resolve
    })
    // no writer lock (as the AI usage leases), so the other transaction can commit while this one waits
    const second = store.db.transactionWithoutWriterLock(async () => {
      inside()
      await held
      await store.db.query('SELECT 1') // after the other one ended: still inside this one
      return store.db.inTransaction()
    })
    await entered
    await store.transaction(() => store.insertDevice(device('a')))
    expect(tracking()).toBe(true) // the second is still open
    release()
    expect(await second).toBe(true)
    run.mockRestore()
    expect(tracking()).toBe(false)
    // a later transaction tracks again, and its calls still join it
    expect(await store.transaction(async () => store.db.inTransaction())).toBe(true)
    expect((await store.listDevices()).map((d) => d.id)).toEqual(['a'])
  })

  it('serialises writers across nodes: a transaction waits for another node’s, and probeWrite gives up after its timeout (GH_STORE_LOCKED)', async () => {
    const url = await freshUrl()
    const a = await open(url)
    const b = await open(url)
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let inside!: () => void
    const entered = new Promise<void>((resolve) => {
      inside = resolve
    })
    const first = a.transaction(async () => {
      await a.insertDevice(device('x'))
      inside()
      await held
    })
    await entered
    await expect(b.probeWrite(t0, 50)).rejects.toMatchObject({ code: 'GH_STORE_LOCKED' })
    const order: string[] = []
    const second = b.transaction(async () => {
      order.push(`b sees x: ${(await b.getDevice('x')) !== undefined}`)
    })
    order.push('a commits')
    release()
    await Promise.all([first, second])
    expect(order).toEqual(['a commits', 'b sees x: true'])
    expect(await b.getMeta('health.probedAt')).toBeUndefined() // the probe that timed out wrote nothing
  })

  it('commits event ids in order under concurrent transactions from two pools: a reader polling by id skips none', async () => {
    const url = await freshUrl()
    const writers = [await open(url, { poolSize: 4 }), await open(url, { poolSize: 4 })]
    const reader = await open(url, { poolSize: 1 })
    const seen: number[] = []
    let done = false
    const poll = (async () => {
      let last = 0
      while (!done || last < (await reader.lastEventSeq())) {
        for (const e of await reader.eventsAfter(last, 100)) {
          seen.push(e.seq)
          last = e.seq
        }
      }
    })()
    const committed: number[] = []
    // 40 transactions, 8 at a time across the two pools, each holding its event id a while before COMMIT
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const w = writers[i % 2]!
          const seq = await w.transaction(async () => {
            const s = await w.appendEvent('device.updated', { round, i }, t0)
            await w.db.query('SELECT pg_sleep($1)', [((i * 7) % 5) / 1000])
            await w.appendAudit({ at: t0, actor: 'test', action: 'x', subject: String(s), details: {} })
            return s
          })
          committed.push(seq)
        }),
      )
    }
    done = true
    await poll
    expect(seen).toEqual([...committed].sort((x, y) => x - y))
    expect(new Set(seen).size).toBe(40)
  })

  it('notifies LISTENers on another node at each commit that appended events, not at a rollback', async () => {
    const url = await freshUrl()
    const node = await open(url)
    const other = await open(url)
    let notified = 0
    const listener = node.db.listen(() => notified++)
    await waitFor(() => notified === 1, 10_000, 'the call after LISTEN is in place')
    expect(listener.connected()).toBe(true)
    await expect(
      other.transaction(async () => {
        await other.appendEvent('device.created', { deviceId: 'gone' }, t0)
        throw new Error('rolled back')
      }),
    ).rejects.toThrow('rolled back')
    await other.setMeta('k', 'v') // no event: no NOTIFY
    await other.appendEvent('device.revoked', { deviceId: 'a' }, t0)
    await waitFor(() => notified >= 2, 10_000, 'the notification of the commit')
    expect(notified).toBe(2) // neither the rollback nor the event-free commit notified
  })

  it('reconnects its LISTEN after pg_terminate_backend and calls onNotify on the reconnect (the feed catches up by id)', async () => {
    const url = await freshUrl()
    const name = url.slice(url.lastIndexOf('/') + 1)
    const errors: Error[] = []
    const node = await open(url, { applicationName: 'node-a', onError: (err) => errors.push(err) })
    const other = await open(url)
    let notified = 0
    const listener = node.db.listen(() => notified++, { minDelayMs: 20 })
    await waitFor(() => notified === 1, 10_000, 'LISTEN in place')
    const [pid] = await server.backendPids(name, 'node-a-listen')
    expect(pid).toBeDefined()
    await server.terminate([pid!])
    await waitFor(() => notified === 2, 10_000, 'onNotify after the reconnect')
    const [newPid] = await server.backendPids(name, 'node-a-listen')
    expect(newPid).not.toBe(pid)
    await other.appendEvent('settings.changed', { scope: 'fleet' }, t0)
    await waitFor(() => notified === 3, 10_000, 'a notification on the new connection')
    expect(listener.connected()).toBe(true)
    await listener.stop()
    expect(await server.backendPids(name, 'node-a-listen')).toEqual([])
    // the cut was reported, coded (the node logs it), and nothing else went wrong
    expect(errors.length).toBeGreaterThan(0)
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(errors.map(() => 'GH_STORE_UNREACHABLE'))
  })

  it("keeps TCP keepalive on its pool's and its LISTEN's connections, so a half-open one is noticed", async () => {
    const url = await freshUrl()
    const node = await open(url, { applicationName: 'node-k' })
    let notified = 0
    node.db.listen(() => notified++) // stopped by close()
    await waitFor(() => notified === 1, 10_000, 'LISTEN in place')
    const ports = (
      await node.db.query('SELECT application_name, client_port FROM pg_stat_activity WHERE datname = current_database() ORDER BY 1')
    ).map((r) => ({ name: String(r.application_name), port: Number(r.client_port) }))
    expect(ports.map((p) => p.name)).toEqual(['node-k', 'node-k-listen']) // the pool's connection (idle now) and LISTEN's
    /** the kernel's timer on the client end of each connection (/proc/net/tcp: `tr` 2 is keepalive, `tm->when` in 1/100 s) */
    const timers = () => {
      const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0')
      const rows = readFileSync('/proc/net/tcp', 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
      return ports.map(({ name, port }) => {
        const row = rows.find((f) => f[1]?.endsWith(`:${hex(port)}`) && f[2]?.endsWith(`:${hex(server.port)}`) && f[3] === '01')
        const [tr, when] = (row?.[5] ?? ':').split(':')
        return {
          name,
          timer: tr === '02' ? 'keepalive' : `tr ${tr}`,
          withinDelay: Number.parseInt(when ?? '', 16) * 10 <= KEEPALIVE_DELAY_MS,
        }
      })
    }
    const expected = ports.map(({ name }) => ({ name, timer: 'keepalive', withinDelay: true }))
    await waitFor(
      () => JSON.stringify(timers()) === JSON.stringify(expected),
      10_000,
      () => `a keepalive timer on every connection (${JSON.stringify(timers())})`,
    )
  })

  it('turns a lost connection into GH_STORE_UNREACHABLE and recovers on the next call', async () => {
    const store = await open(await freshUrl())
    await store.insertDevice(device('a'))
    await expect(
      store.transaction(async () => {
        await store.insertDevice(device('b'))
        await store.db.query('SELECT pg_terminate_backend(pg_backend_pid())')
      }),
    ).rejects.toMatchObject({ code: 'GH_STORE_UNREACHABLE' })
    expect(await store.getDevice('b')).toBeUndefined()
    expect(await store.getDevice('a')).toEqual(device('a'))
    const nothing = `postgres://postgres@127.0.0.1:${server.port + 1}/none`
    // refused when opening: the URL or the server is wrong (pg-connect-failures.test.ts)
    await expect(PgDatabase.open(nothing, { connectTimeoutMs: 2000 })).rejects.toMatchObject({
      code: 'GH_STORE_CONNECTION_REFUSED',
      message: expect.not.stringContaining('postgres@'),
    })
  })
})
