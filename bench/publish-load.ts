import type { MqttClient } from 'mqtt'
import { stampedPayload } from './brokers/ipc.ts'

export interface PublishLoadOptions {
  qos: 0 | 1
  /** payload bytes: a JSON document stamped with the publisher's hrtime (ipc.ts stampedPayload) */
  size: number
  /** publishes in flight per client: QoS 1 until PUBACK, QoS 0 until written to the socket */
  window: number
  /** stop starting new publishes after this; the whole load is abandoned 5 s later */
  timeoutMs: number
}

export interface PublishLoadResult {
  sent: number
  /** QoS 1: PUBACKs received; QoS 0: publishes written */
  completed: number
  failed: number
  /** hrtime of the last completion */
  lastCompletionNs: bigint
  /** QoS 1 only: publish -> PUBACK, ms */
  ackLatenciesMs: number[]
}

/**
 * Closed-loop publish load: each client publishes to devices/{its id}/telemetry, keeping `window`
 * publishes in flight, until `total` messages are spread over the clients. Latency under this load
 * is queueing at saturation (Little's law: in flight / throughput), not an idle round trip.
 */
export async function publishLoad(
  clients: { deviceId: string; client: MqttClient }[],
  total: number,
  options: PublishLoadOptions,
): Promise<PublishLoadResult> {
  const deadline = performance.now() + options.timeoutMs
  const ackLatenciesMs: number[] = []
  let sent = 0
  let completed = 0
  let lastCompletionNs = 0n
  const lanes: Promise<void>[] = []
  clients.forEach(({ deviceId, client }, i) => {
    const quota = Math.floor(total / clients.length) + (i < total % clients.length ? 1 : 0)
    const topic = `devices/${deviceId}/telemetry`
    let started = 0
    const lane = async () => {
      while (started < quota && client.connected && performance.now() < deadline) {
        started++
        sent++
        const payload = stampedPayload(options.size)
        const t0 = options.qos === 1 ? performance.now() : 0
        try {
          await client.publishAsync(topic, payload, { qos: options.qos })
          if (options.qos === 1) ackLatenciesMs.push(performance.now() - t0)
          completed++
          lastCompletionNs = process.hrtime.bigint()
        } catch {
          // counted below as sent - completed
        }
      }
    }
    for (let w = 0; w < Math.min(options.window, quota); w++) lanes.push(lane())
  })
  // a publish on a connection that dropped may never complete: bound the whole load, not each publish
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.all(lanes), new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs + 5000)))])
  clearTimeout(timer)
  return { sent, completed, failed: sent - completed, lastCompletionNs, ackLatenciesMs }
}

/**
 * Open-loop paced load: `total` messages at `ratePerSecond`, round-robin over the clients, whatever
 * the broker does. For latency on a lightly loaded broker (the closed loop above measures saturation).
 */
export async function pacedLoad(
  clients: { deviceId: string; client: MqttClient }[],
  total: number,
  ratePerSecond: number,
  options: Omit<PublishLoadOptions, 'window'>,
): Promise<PublishLoadResult> {
  const ackLatenciesMs: number[] = []
  const pending: Promise<void>[] = []
  let sent = 0
  let completed = 0
  let lastCompletionNs = 0n
  const started = performance.now()
  const deadline = started + options.timeoutMs
  while (sent < total && performance.now() < deadline) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * ratePerSecond) + 1)
    while (sent < due) {
      const { deviceId, client } = clients[sent % clients.length] as { deviceId: string; client: MqttClient }
      sent++
      const t0 = performance.now()
      pending.push(
        client.publishAsync(`devices/${deviceId}/telemetry`, stampedPayload(options.size), { qos: options.qos }).then(
          () => {
            if (options.qos === 1) ackLatenciesMs.push(performance.now() - t0)
            completed++
            lastCompletionNs = process.hrtime.bigint()
          },
          () => {},
        ),
      )
    }
    await new Promise((r) => setTimeout(r, 1))
  }
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.all(pending), new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))])
  clearTimeout(timer)
  return { sent, completed, failed: sent - completed, lastCompletionNs, ackLatenciesMs }
}
