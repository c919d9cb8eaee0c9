import type { Duplex } from 'node:stream'

/**
 * Maximum MQTT packet size, enforced on the connection.
 *
 * aedes 1.2 has no packet-size option and mqtt-packet 9's parser buffers whatever remaining length a
 * packet declares (up to 256 MiB) before it emits anything, so neither a hook nor the parser can stop a
 * device from making the broker buffer a huge packet. This scanner follows MQTT frame boundaries in the
 * bytes aedes reads (fixed header byte, remaining-length varint, then it skips the body) and reports a
 * frame as soon as its declared size is known to exceed the limit: before its body is buffered.
 * It does O(1) work per frame, not per byte. It also tells a listener each frame's packet type, which is
 * where the per-device packet budget (packet-budget.ts) counts every packet a device sends.
 */
export type FrameViolation =
  | { kind: 'too-large'; declaredBytes: number }
  | { kind: 'malformed-length' }
  | { kind: 'over-budget'; packetType: number }

/**
 * Called once per frame, as soon as its header is read (before its body is buffered), with the MQTT
 * packet type (1 CONNECT … 14 DISCONNECT); a violation it returns stops the stream like an oversized frame.
 */
export type FrameListener = (packetType: number) => FrameViolation | null

export interface FrameScanner {
  /** Feeds the next bytes of the stream; returns the first violation, or null. */
  feed(chunk: Uint8Array): FrameViolation | null
}

export function createFrameScanner(maxPacketBytes: number, onFrame?: FrameListener): FrameScanner {
  // state: 0 = expecting a fixed-header byte, 1 = reading the remaining length, 2 = skipping the body
  let state = 0
  let length = 0
  let multiplier = 1
  let lengthBytes = 0
  let skip = 0
  let packetType = 0
  let failed: FrameViolation | null = null

  const fail = (violation: FrameViolation) => {
    failed = violation
    return violation
  }
  return {
    feed(chunk) {
      if (failed) return failed
      let i = 0
      while (i < chunk.length) {
        if (state === 2) {
          const n = Math.min(skip, chunk.length - i)
          skip -= n
          i += n
          if (skip === 0) state = 0
          continue
        }
        const byte = chunk[i++] as number
        if (state === 0) {
          state = 1
          packetType = byte >> 4
          length = 0
          multiplier = 1
          lengthBytes = 0
          continue
        }
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        lengthBytes++
        if (byte & 0x80) {
          if (lengthBytes === 4) return fail({ kind: 'malformed-length' })
          continue
        }
        const total = 1 + lengthBytes + length
        if (total > maxPacketBytes) return fail({ kind: 'too-large', declaredBytes: total })
        const refused = onFrame?.(packetType) ?? null
        if (refused) return fail(refused)
        skip = length
        state = skip === 0 ? 0 : 2
      }
      return null
    },
  }
}

/**
 * Makes `conn.read()` (what aedes uses to pull bytes, lib/client.js nextBatch) pass each chunk through
 * a frame scanner first. On a violation the chunk is withheld from aedes and `onViolation` runs (it
 * should destroy the connection); complete packets that arrived in the same read as the oversized one
 * are dropped with it (the device broke the protocol; what it sent last is not worth a copy). Patching the instance's read keeps the bytes zero-copy and adds no
 * stream hop; test/integration/broker/limits.test.ts fails if a future aedes stops reading this way.
 */
export function guardFrameSize(
  conn: Duplex,
  maxPacketBytes: number,
  onViolation: (violation: FrameViolation) => void,
  onFrame?: FrameListener,
): void {
  const scanner = createFrameScanner(maxPacketBytes, onFrame)
  const read = conn.read
  let violated = false
  conn.read = function guardedRead(this: Duplex, size?: number) {
    const chunk: unknown = read.call(this, size)
    if (violated) return null
    if (chunk instanceof Uint8Array) {
      const violation = scanner.feed(chunk)
      if (violation) {
        violated = true
        onViolation(violation)
        return null
      }
    }
    return chunk
  }
}
