// Idle cost of each broker: CPU over a quiet window and RSS, nothing connected.
//   npx tsx bench/idle.ts [seconds=10] [kinds=gatehouse,aedes]   (builds nothing: run `npm run build` first)
// Each broker starts from the bench fixture (a data dir with a few devices), settles for 5 s, then its own
// /proc/PID/stat CPU (10 ms ticks) and VmRSS are sampled over the window.
import { setTimeout as sleep } from 'node:timers/promises'
import { benchFixture } from './fixture.ts'
import { type BrokerKind, startBroker } from './brokers/launch.ts'
import { machineLoad, sampleProcess } from './proc-stats.ts'

const seconds = Number(process.argv[2] ?? 10)
const kinds = (process.argv[3] ?? 'gatehouse,aedes').split(',') as BrokerKind[]
const fixture = await benchFixture(4)
for (const kind of kinds) {
  const broker = await startBroker(kind, fixture)
  await sleep(5000)
  const before = sampleProcess(broker.pid)
  await sleep(seconds * 1000)
  const after = sampleProcess(broker.pid)
  const cpuMsPerS = (after.cpuMs - before.cpuMs) / seconds
  console.log(
    `${kind}: idle CPU ${cpuMsPerS.toFixed(1)} ms/s, RSS ${(after.rssBytes / 2 ** 20).toFixed(1)} MiB (load ${machineLoad().loadAverage1m.toFixed(1)})`,
  )
  await broker.stop()
}
process.exit(0)
