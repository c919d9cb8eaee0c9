// Main-thread CPU of one registry-only create-batch (issue 14), split into its prepare (issuing, in memory)
// and its commit (one SQLite transaction); schedstat gives the main thread's CPU in nanoseconds.
// Run: node --import tsx bench/registry-batch-cpu.ts [count]   (add --cpu-prof to see where it goes)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { cryptoRandom, systemClock } from '../certs/index.ts'
import { initControlPlane, openControlPlane } from '../provisioning/index.ts'

const count = Number(process.argv[2] ?? 5000)
const log = pino({ level: 'silent' })
/** CPU of the main thread so far, in nanoseconds (Linux: /proc/.../schedstat). */
function mainThreadNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
}
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-registry-batch-'))
try {
  const dataDir = join(dir, 'data')
  await initControlPlane(dataDir, {}, { log }, 'bench')
  const control = await openControlPlane(dataDir, {}, { log, clock: systemClock, random: cryptoRandom })
  await (await control.authority.prepareBatch({ count: 500, prefix: 'warm-' }, 'bench')).commit()
  const cpu0 = process.cpuUsage()
  const t0 = mainThreadNs()
  const started = performance.now()
  const batch = await control.authority.prepareBatch({ count, prefix: 'one-' }, 'bench')
  const t1 = mainThreadNs()
  await batch.commit()
  const t2 = mainThreadNs()
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpu0)
  const us = (ns: number) => (ns / 1000 / count).toFixed(1)
  console.log(
    `${count} devices, registry only: ${Math.round(count / seconds)}/s; main thread ${us(t2 - t0)} us/device ` +
      `(prepare ${us(t1 - t0)}, commit ${us(t2 - t1)}), process ${((cpu.user + cpu.system) / count).toFixed(1)} us/device`,
  )
  await control.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
