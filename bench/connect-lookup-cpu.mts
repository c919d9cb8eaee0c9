// CPU per registry-directory lookup (cold: the first of a device; warm: from its cache), limitsOf and the change
// feed's data_version, on a real SQLite file: `npx tsx bench/connect-lookup-cpu.mts` (N=5000 devices by default).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { createChangeFeed } from '../provisioning/events.ts'
import { createRegistryDirectory } from '../provisioning/registry-directory.ts'
import { createLimitsService, NO_LIMITS_POLICY } from '../provisioning/limits/index.ts'
import { SqliteRegistryStore } from '../provisioning/store/sqlite-registry-store.ts'

const N = Number(process.env.N ?? 5000)
const clock = { now: () => new Date('2026-06-01T00:00:00Z') }
const log = pino({ level: 'silent' })
const store = new SqliteRegistryStore(join(mkdtempSync(join(tmpdir(), 'lk-')), 'g.db'))
const t0 = new Date('2026-01-01T00:00:00Z'), t1 = new Date('2027-01-01T00:00:00Z')
const pem = '-----BEGIN CERTIFICATE-----\n' + 'A'.repeat(1000) + '\n-----END CERTIFICATE-----\n'
await store.transaction(async () => {
  for (let i = 0; i < N; i++) {
    const id = `dev-${i}`
    await store.insertDevice({ id, group: 'g', tier: 'standard', status: 'active', createdAt: t0, updatedAt: t0 })
    await store.insertCertificate({ serial: (i + 1).toString(16), deviceId: id, fingerprint: `fp${i}`, notBefore: t0, notAfter: t1, status: 'active', supersededAt: null, revokedAt: null, revocationReason: null, pem, createdAt: t0 })
  }
})
const feed = await createChangeFeed({ store, clock, log } as never)
const directory = createRegistryDirectory({ store, feed, clock, log } as never)
const limits = createLimitsService({ store, limits: (store as any).limits, clock, log } as never, NO_LIMITS_POLICY)
const ids = Array.from({ length: N }, (_, i) => ({ commonName: `dev-${i}`, deviceId: `dev-${i}`, serial: (i + 1).toString(16), fingerprint: `fp${i}`, notBefore: t0, notAfter: t1 }))
async function run(label: string, fn: (i: number) => Promise<unknown>) {
  const c = process.cpuUsage()
  for (let i = 0; i < N; i++) await fn(i)
  const u = process.cpuUsage(c)
  console.log(label, ((u.user + u.system) / N).toFixed(1), 'us CPU each')
}
await run('lookup cold', (i) => directory.lookup(ids[i]!).then((r) => { if (r.kind !== 'active') throw new Error(JSON.stringify(r)) }))
await run('lookup warm', (i) => directory.lookup(ids[i]!))
await run('limitsOf(known)', (i) => limits.limitsOf(`dev-${i}`, { tier: 'standard', group: 'g' }))
await run('dataVersion', () => store.dataVersion())
store.close()
