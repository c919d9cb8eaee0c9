// One create-batch with PEM bundles, as the provision bench times it, for strace -c -f / --cpu-prof (issue 14).
// Run: strace -c -f node --import tsx bench/one-batch.ts [count]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { cryptoRandom, systemClock } from '../certs/index.ts'
import { stageBundles } from '../provisioning/bundles/write-bundle.ts'
import { initControlPlane, openControlPlane } from '../provisioning/index.ts'

const count = Number(process.argv[2] ?? 1000)
const log = pino({ level: 'silent' })
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-one-batch-'))
try {
  const dataDir = join(dir, 'data')
  await initControlPlane(dataDir, {}, { log }, 'bench')
  const control = await openControlPlane(dataDir, {}, { log, clock: systemClock, random: cryptoRandom })
  const started = performance.now()
  const staged = stageBundles(join(dir, 'devices'), { format: 'pem' })
  const batch = await control.authority.prepareBatch({ count, prefix: 'one-' }, 'bench', undefined, staged.write)
  await staged.commit(batch.commit)
  console.log(`${count} devices with bundles: ${Math.round(count / ((performance.now() - started) / 1000))}/s`)
  await control.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
