// Unloaded connects, from a process of their own: connects one device at a time (each closed before
// the next) and reports each connect's latency (TCP connect start -> CONNACK).
//   node --import tsx bench/brokers/probe-client.ts   (then { port, devices, warmup, count } over IPC)
//
// Why not from the bench process: after a 2,000-device storm, the bench process's own TLS handshakes
// to a broker it had not talked to before took ~35 ms instead of ~5 for the next ~8 connects (the same
// broker answered a fresh process in ~6 ms), which would have charged the load generator's state to
// whichever broker came next.
import { closeClients, connectDevice, type DeviceBundle } from '../../device-sim/index.ts'

interface ProbeRequest {
  port: number
  devices: DeviceBundle[]
  warmup: number
  count: number
}

process.once('message', async (m: ProbeRequest) => {
  try {
    const latencies: number[] = []
    for (let i = 0; i < m.warmup + m.count; i++) {
      const device = m.devices[i % m.devices.length] as DeviceBundle
      const { client, latencyMs } = await connectDevice(device, { port: m.port })
      if (i >= m.warmup) latencies.push(latencyMs)
      await closeClients([client], 2000)
      await new Promise((r) => setTimeout(r, 20))
    }
    process.send?.({ latencies })
  } catch (err) {
    process.send?.({ error: String((err as Error).message) })
  }
  process.exit(0)
})
