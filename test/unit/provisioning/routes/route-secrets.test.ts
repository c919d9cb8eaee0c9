import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../../certs/index.ts'
import { createRouteService } from '../../../../provisioning/routes/route-service.ts'
import { createSettingsCipher, unusableCipher } from '../../../../provisioning/settings/secrets.ts'
import { SqliteRegistryStore } from '../../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'
import { tempDir } from '../../../helpers/temp-dir.ts'

// Route secrets are sealed at rest with the settings key (AES-256-GCM, {"$enc": ...}), like secret settings.
const key = new Uint8Array(32).fill(9)
const policy = { maxRoutes: 16, allowPrivateTargets: false }
const log = pino({ level: 'silent' })

function open(dir: string, cipher = createSettingsCipher(key, cryptoRandom)) {
  const store = new SqliteRegistryStore(join(dir, 'registry.db'))
  const routes = createRouteService({ store, routes: store.routes, cipher, clock: fixedClock(), random: cryptoRandom, log }, policy)
  return { store, routes }
}

/** Every byte the registry keeps on disk (the database and its WAL), as text. */
const onDisk = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.startsWith('registry.db'))
    .map((f) => readFileSync(join(dir, f)).toString('latin1'))
    .join('\n')

describe('route secrets at rest', async () => {
  it('stores a new route secret sealed: not in the SQLite files, not in list or get, in clear only for the broker', async () => {
    const dir = tempDir()
    const { store, routes } = open(dir)
    const created = await routes.create({ url: 'https://ingest.example.com/in' }, 'operator:test')
    expect(created.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(JSON.stringify([await routes.list(), await routes.get(created.id)])).not.toContain(created.secret)
    expect((await store.routes.get(created.id))?.secret).toMatch(/^\{"\$enc":"v1:/)
    expect((await routes.records()).map((r) => r.secret)).toEqual([created.secret])
    store.close()
    const files = onDisk(dir)
    expect(files).toContain(created.id)
    expect(files).not.toContain(created.secret)
  })

  it('seals a secret stored in clear (a route from before sealing) when the control plane opens, keeping the route', async () => {
    const dir = tempDir()
    const first = open(dir)
    const clear = 'a-route-secret-from-before-sealing-0123456789'
    await first.store.routes.insert({
      id: 'rt_000000000001',
      url: 'https://ingest.example.com/old',
      group: null,
      secret: clear,
      batchSize: 10,
      batchMs: 1000,
      queueMax: 100,
      redact: false,
      consent: false,
      createdAt: new Date('2026-01-01T00:00:00Z'),
      createdBy: 'operator:test',
    })
    // without a usable key nothing changes, and the clear row still runs
    const locked = createRouteService(
      {
        store: first.store,
        routes: first.store.routes,
        cipher: unusableCipher(new Error('no key')),
        clock: fixedClock(),
        random: cryptoRandom,
        log,
      },
      policy,
    )
    expect(await locked.sealStoredSecrets()).toBe(0)
    expect((await locked.records()).map((r) => r.secret)).toEqual([clear])
    expect(await first.routes.sealStoredSecrets()).toBe(1)
    expect(await first.routes.sealStoredSecrets()).toBe(0)
    first.store.close()

    const again = open(dir)
    expect(await again.routes.records()).toMatchObject([{ id: 'rt_000000000001', secret: clear, batchSize: 10 }])
    expect((await again.store.routes.get('rt_000000000001'))?.secret).toMatch(/^\{"\$enc":/)
    again.store.close()
    expect(onDisk(dir)).not.toContain(clear)
  })

  it('leaves out (and logs) a route whose secret does not open with this key, running the others', async () => {
    const dir = tempDir()
    const { store, routes } = open(dir)
    await routes.create({ url: 'https://ingest.example.com/a' }, 'operator:test')
    const other = createRouteService(
      {
        store,
        routes: store.routes,
        cipher: createSettingsCipher(new Uint8Array(32).fill(1), cryptoRandom),
        clock: fixedClock(),
        random: cryptoRandom,
        log,
      },
      policy,
    )
    const b = await other.create({ url: 'https://ingest.example.com/b' }, 'operator:test')
    expect((await routes.records()).map((r) => r.url)).toEqual(['https://ingest.example.com/a'])
    expect((await other.records()).map((r) => r.secret)).toEqual([b.secret])
    store.close()
  })

  it('refuses to create a route without a usable settings key, storing nothing', async () => {
    const dir = tempDir()
    const store = new SqliteRegistryStore(join(dir, 'registry.db'))
    const routes = createRouteService(
      {
        store,
        routes: store.routes,
        cipher: unusableCipher(new Error('GATEHOUSE_SETTINGS_KEY is missing')),
        clock: fixedClock(),
        random: cryptoRandom,
        log,
      },
      policy,
    )
    await expect(routes.create({ url: 'https://ingest.example.com/a' }, 'operator:test')).rejects.toThrow(
      'GATEHOUSE_SETTINGS_KEY is missing',
    )
    expect(await routes.list()).toEqual([])
    store.close()
  })
})
