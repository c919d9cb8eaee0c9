/**
 * The messages between the bench (parent) and a broker or consumer child, over Node's IPC channel
 * with `serialization: 'advanced'` (so bigint hrtime stamps pass as they are).
 *
 * A consumer counts telemetry arrivals and their latency (arrival hrtime - the publisher's hrtime
 * stamped in the payload; process.hrtime is CLOCK_MONOTONIC, shared by every process on the machine). Per-message data stays in the child until the parent asks for a report after the timed
 * window, so the IPC channel costs the broker nothing per message.
 */

export type ParentMessage =
  /** arm the consumer: reset, then say `reached` when `count` messages have arrived */
  | { type: 'expect'; count: number }
  /** fewer were sent than expected (the publisher hit its time cap): say `reached` at `count` instead */
  | { type: 'lower'; count: number }
  | { type: 'report' }
  | { type: 'close' }
  /** mqtt-consumer child only: who to connect as, and where */
  | { type: 'init'; port: number; device: { deviceId: string; cert: string; key: string; ca: string } }

export type ChildMessage =
  | { type: 'listening'; port: number; httpUrl?: string | undefined }
  | { type: 'ready' }
  | { type: 'armed' }
  | { type: 'reached'; lastArrivalNs: bigint }
  | { type: 'report'; report: ConsumerReport }
  | { type: 'failed'; error: string }

export interface ConsumerReport {
  /** messages since the last `expect` */
  received: number
  /** messages that arrived while nothing was expected (should be 0) */
  stray: number
  firstArrivalNs: bigint
  lastArrivalNs: bigint
  /** publish (publisher's hrtime) -> arrival at the consumer, ms */
  latencyP50Ms: number
  latencyP99Ms: number
  latencyMaxMs: number
}

/**
 * Telemetry as devices send it, a JSON document, padded to the payload size:
 *   {"ts":"<publisher's hrtime, ns, 20 digits>","pad":"aaa…"}
 * JSON rather than raw bytes because Gatehouse's AI bridge parses every telemetry payload as JSON: a
 * binary payload would measure its error path instead of its work.
 */
const TS_PREFIX = '{"ts":"'
const TS_DIGITS = 20
const TS_SUFFIX = '","pad":"'
const TS_END = TS_PREFIX.length + TS_DIGITS
export const MIN_PAYLOAD_BYTES = TS_END + TS_SUFFIX.length + 2

/** A fresh payload of exactly `size` bytes (at least MIN_PAYLOAD_BYTES) stamped with the publisher's hrtime. */
export function stampedPayload(size: number): Buffer {
  const pad = Math.max(0, size - MIN_PAYLOAD_BYTES)
  return Buffer.from(`${TS_PREFIX}${process.hrtime.bigint().toString().padStart(TS_DIGITS, '0')}${TS_SUFFIX}${'a'.repeat(pad)}"}`, 'latin1')
}

/** The publisher's hrtime from a stamped payload, or null. */
export function stampOf(payload: Buffer): bigint | null {
  if (payload.length < MIN_PAYLOAD_BYTES) return null
  try {
    return BigInt(payload.toString('latin1', TS_PREFIX.length, TS_END))
  } catch {
    return null
  }
}

function percentileOf(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

function send(message: ChildMessage): void {
  process.send?.(message)
}

/**
 * Child side of the consumer protocol: answers `expect` / `report` on the IPC channel and returns the
 * function to call with each arriving payload.
 */
export function serveConsumer(): (payload: Buffer) => void {
  let expected = 0
  let received = 0
  let stray = 0
  let latencies = new Float64Array(0)
  let first = 0n
  let last = 0n
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'expect') {
      expected = m.count
      received = 0
      stray = 0
      first = 0n
      last = 0n
      latencies = new Float64Array(m.count)
      send({ type: 'armed' })
    } else if (m.type === 'lower') {
      expected = Math.min(expected, m.count)
      if (received >= expected) send({ type: 'reached', lastArrivalNs: last })
    } else if (m.type === 'report') {
      const n = Math.min(received, latencies.length)
      const sorted = latencies.slice(0, n).sort()
      send({
        type: 'report',
        report: {
          received,
          stray,
          firstArrivalNs: first,
          lastArrivalNs: last,
          latencyP50Ms: percentileOf(sorted, 50),
          latencyP99Ms: percentileOf(sorted, 99),
          latencyMaxMs: n ? (sorted[n - 1] as number) : NaN,
        },
      })
    }
  })
  return (payload: Buffer) => {
    const now = process.hrtime.bigint()
    if (received >= expected) {
      stray++
      return
    }
    const sent = stampOf(payload)
    latencies[received] = sent === null ? NaN : Number(now - sent) / 1e6
    if (received === 0) first = now
    last = now
    if (++received === expected) send({ type: 'reached', lastArrivalNs: now })
  }
}

/** Child side: closes on `close` from the parent, or when the parent goes away. */
export function onCloseRequest(close: () => Promise<void>): void {
  let closing = false
  const shutdown = () => {
    if (closing) return
    closing = true
    const timer = setTimeout(() => process.exit(0), 5000)
    timer.unref()
    close()
      .catch((err) => console.error(err))
      .finally(() => process.exit(0))
  }
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'close') shutdown()
  })
  process.on('disconnect', shutdown)
  process.on('SIGTERM', shutdown)
}
