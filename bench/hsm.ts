import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { cryptoRandom, systemClock } from '../certs/index.ts'
import { initControlPlane, openControlPlane } from '../provisioning/index.ts'
import { median, printTable } from './table.ts'

const COUNT = Number(process.env.BENCH_HSM_COUNT ?? 500)
const REPS = Number(process.env.BENCH_REPS ?? 3)
const MODULE = '/usr/lib/softhsm/libsofthsm2.so'
const PIN = 'bench-pin'

/**
 * Device issuance with the CA keys in a PKCS#11 token (SoftHSM2, in a temp dir) against file keys, in
 * one process, alternating the order across repetitions: `prepareBatch` (keygen + sign) of COUNT
 * devices, registry not committed. SoftHSM2 signs in software, so this measures the PKCS#11 path's
 * cost; a hardware HSM's own signing rate comes on top.
 */
export async function hsmBenchmark(): Promise<Record<string, unknown>> {
  if (!existsSync(MODULE)) {
    console.log(`hsm: skipped, ${MODULE} is missing (apt-get install softhsm2)`)
    return { skipped: `${MODULE} missing` }
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-hsm-'))
  try {
    const conf = join(dir, 'softhsm2.conf')
    mkdirSync(join(dir, 'tokens'))
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`)
    process.env.SOFTHSM2_CONF = conf // read once, when this process loads the module
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', PIN, '--so-pin', 'so-pin'], { stdio: 'ignore' })
    const log = pino({ level: 'silent' })
    const runs: { keys: string; rep: number; devicesPerSecond: number }[] = []
    for (let rep = 1; rep <= REPS; rep++) {
      for (const keys of rep % 2 ? ['file', 'pkcs11'] : ['pkcs11', 'file']) {
        const dataDir = join(dir, `data-${rep}-${keys}`)
        const pkcs11 = keys === 'pkcs11' ? { module: MODULE, token: 'bench' } : undefined
        await initControlPlane(dataDir, { ...(pkcs11 && { pkcs11 }) }, { log, pkcs11Pin: PIN }, 'bench')
        const control = await openControlPlane(dataDir, {}, { log, clock: systemClock, random: cryptoRandom, pkcs11Pin: PIN })
        const started = performance.now()
        await control.authority.prepareBatch({ count: COUNT, prefix: 'bench-' }, 'bench')
        runs.push({ keys, rep, devicesPerSecond: COUNT / ((performance.now() - started) / 1000) })
        await control.close()
      }
    }
    const rate = (keys: string) => median(runs.filter((r) => r.keys === keys).map((r) => r.devicesPerSecond))
    const ratios = Array.from({ length: REPS }, (_, i) => {
      const of = (keys: string) => runs.find((r) => r.rep === i + 1 && r.keys === keys)!.devicesPerSecond
      return of('pkcs11') / of('file')
    })
    const summary = { file: Math.round(rate('file')), pkcs11: Math.round(rate('pkcs11')), pkcs11ToFile: Number(median(ratios).toFixed(2)) }
    printTable([
      ['device issuance (P-256)', `devices/s, median of ${REPS} x ${COUNT}`],
      ['CA keys in files', summary.file],
      ['CA keys in SoftHSM2 (PKCS#11)', summary.pkcs11],
      ['token / file (median of paired ratios)', summary.pkcs11ToFile],
    ])
    return { count: COUNT, reps: REPS, runs, summary }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
