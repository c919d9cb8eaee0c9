// CPU of device issuing alone (issue 14): N devices as create-batch makes them (a KeyObject key pair, the DER
// certificate signed by a software P-256 CA, the key's PKCS#8), 64 in flight; main-thread and whole-process CPU.
// Run: node --import tsx bench/issue-cpu.ts [N]
import { readFileSync } from 'node:fs'
import {
  createCertificateAuthority,
  cryptoRandom,
  exportPrivateKeyPkcs8,
  generateKeyObjects,
  issueDeviceCertificateDer,
  systemClock,
} from '../certs/index.ts'

const N = Number(process.argv[2] ?? 5000)
const deps = { clock: systemClock, random: cryptoRandom }
/** CPU of the main thread so far, in microseconds (Linux: /proc, clock ticks of 10 ms). */
function mainThreadMicros(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}
const ca = await createCertificateAuthority({ keyAlgorithm: 'p256' }, deps)
async function device(i: number): Promise<void> {
  const pair = await generateKeyObjects('p256')
  await Promise.all([
    issueDeviceCertificateDer(ca.issuing, { deviceId: `bench-${i}`, publicKey: pair.publicKey }, deps),
    exportPrivateKeyPkcs8(pair.privateKey),
  ])
}
async function run(n: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < n) await device(next++)
  }
  await Promise.all(Array.from({ length: 64 }, worker))
}
await run(500) // warm-up
const cpu0 = process.cpuUsage()
const main0 = mainThreadMicros()
const t0 = performance.now()
await run(N)
const wall = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
const main = mainThreadMicros() - main0
console.log(
  `${N} devices: main thread ${(main / N).toFixed(1)} us/device, process ${((cpu.user + cpu.system) / N).toFixed(1)} us/device, ` +
    `wall ${((wall * 1000) / N).toFixed(1)} us/device`,
)
