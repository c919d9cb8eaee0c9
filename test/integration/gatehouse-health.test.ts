import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../config.ts'
import { startGatehouse } from '../../gatehouse.ts'
import { dataDirLayout } from '../../provisioning/index.ts'
import { createRecordingLogger } from '../helpers/broker-harness.ts'
import { tempDir } from '../helpers/temp-dir.ts'
import { waitFor } from '../helpers/wait.ts'

interface Report {
  status: 'ok' | 'failed'
  checks: Record<string, { status: 'ok' | 'failed'; code?: string; reason?: string }>
}

/** A real Gatehouse (temp data dir, SQLite file, MQTT and HTTP on port 0) and a GET of its probes, without a key. */
async function running() {
  const dataDir = join(tempDir(), 'data')
  const { log, records } = createRecordingLogger('info')
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log })
  onTestFinished(() => gatehouse.close())
  const get = async (path: '/healthz' | '/readyz') => {
    const res = await fetch(`${gatehouse.http.url}${path}`)
    return { status: res.status, cacheControl: res.headers.get('cache-control'), body: (await res.json()) as Report }
  }
  /** /readyz once it answers `status` (reports are reused for up to 1 s) */
  const readyzWhen = (status: number) =>
    waitFor(async () => ((await get('/readyz')).status === status ? get('/readyz') : null), 10_000, `/readyz ${status}`, 50)
  return { dataDir, gatehouse, records, get, readyzWhen }
}

const allOk = { database: { status: 'ok' }, ca: { status: 'ok' }, mqtt: { status: 'ok' }, changeFeed: { status: 'ok' } }

describe('GET /healthz and /readyz on a running Gatehouse (no API key)', () => {
  it('answers 200 with every named check ok, never cached by a proxy', async () => {
    const { get } = await running()
    // a CPU-starved box truthfully reports a blocked event loop (start-up's work counts, and load can add more);
    // each look restarts the window, so wait for one that was not starved before checking the whole answer
    const healthy = await waitFor(
      async () => ((await get('/healthz')).status === 200 ? get('/healthz') : null),
      15_000,
      '/healthz 200',
      100,
    )
    expect(healthy).toEqual({
      status: 200,
      cacheControl: 'no-store',
      body: { status: 'ok', checks: { eventLoop: { status: 'ok' } } },
    })
    expect(await get('/readyz')).toEqual({ status: 200, cacheControl: 'no-store', body: { status: 'ok', checks: allOk } })
  })

  it('turns 503 naming the database while another connection holds the write lock, and 200 again once it is released, without a restart', async () => {
    const { dataDir, records, readyzWhen } = await running()
    // the CRL that start-up issues is written to the registry: let that write land before taking the lock
    await waitFor(() => records.some((r) => r.msg === 'CRL issued'), 10_000, 'the start-up CRL')
    const other = new Database(dataDirLayout(dataDir).database)
    onTestFinished(() => void other.close())
    other.exec('BEGIN EXCLUSIVE') // as root, chmod would not stop a write: a lock held past the probe's wait does
    const locked = await readyzWhen(503)
    expect(locked.body).toEqual({
      status: 'failed',
      checks: { ...allOk, database: { status: 'failed', code: 'GH_STORE_LOCKED', reason: expect.stringContaining('SQLITE_BUSY') } },
    })
    other.exec('ROLLBACK')
    expect((await readyzWhen(200)).body).toEqual({ status: 'ok', checks: allOk })
  })

  it('names the MQTT listener once the broker is closed', async () => {
    const { gatehouse, readyzWhen } = await running()
    await gatehouse.broker.close()
    expect((await readyzWhen(503)).body.checks).toEqual({
      ...allOk,
      mqtt: { status: 'failed', code: 'GH_BROKER_STATE', reason: expect.stringContaining('closed') },
    })
  })

  it('names the change feed while it is stopped, and is ready again once it runs', async () => {
    const { gatehouse, readyzWhen } = await running()
    gatehouse.feed.stop()
    expect((await readyzWhen(503)).body.checks).toEqual({
      ...allOk,
      changeFeed: { status: 'failed', code: 'GH_HEALTH_FEED_STALLED', reason: expect.stringContaining('stopped') },
    })
    gatehouse.feed.start()
    expect((await readyzWhen(200)).body.checks).toEqual(allOk)
  })
})
