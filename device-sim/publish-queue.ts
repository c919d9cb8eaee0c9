/**
 * A device's outgoing messages, in order, across reconnects and certificate switches. Messages wait
 * here while the device is offline or paused (bounded: the oldest telemetry is dropped first and
 * counted); at most `maxInFlight` are on the wire at once. When a connection goes away, the messages
 * still in flight (not acknowledged) go back to the front of the queue, in order, and are sent again
 * on the next connection: at-least-once, as MQTT QoS 1 promises, without losing any.
 */

export interface Outgoing {
  topic: string
  payload: string
  qos: 0 | 1
  kind: 'telemetry' | 'alert' | 'report'
  /** set once it was handed to a connection (so `sent` counts messages, not retries) */
  sentOnce?: boolean
}

/** Hands one message to the connection; `done` runs on PUBACK (QoS 1) or once written (QoS 0). */
export type Sender = (message: Outgoing, done: (err?: Error) => void) => void

export interface PublishQueueStats {
  queued: number
  inFlight: number
  /** distinct messages handed to a connection */
  sent: number
  /** QoS 1 messages the broker acknowledged */
  acked: number
  /** dropped because the queue was full */
  dropped: number
}

export function createPublishQueue(options: { maxQueued?: number; maxInFlight?: number } = {}) {
  const maxQueued = options.maxQueued ?? 10_000
  const maxInFlight = options.maxInFlight ?? 10
  let queue: Outgoing[] = []
  const inFlight = new Set<Outgoing>()
  let sender: Sender | null = null
  let generation = 0
  let sent = 0
  let acked = 0
  let dropped = 0
  let drainWaiters: (() => void)[] = []

  function settleDrain(): void {
    if (inFlight.size > 0) return
    const waiters = drainWaiters
    drainWaiters = []
    for (const w of waiters) w()
  }

  function pump(): void {
    while (sender && queue.length > 0 && inFlight.size < maxInFlight) {
      const message = queue.shift() as Outgoing
      const gen = generation
      inFlight.add(message)
      if (!message.sentOnce) {
        message.sentOnce = true
        sent++
      }
      sender(message, (err) => {
        if (gen !== generation || !inFlight.has(message)) return // a connection that is gone: detach() requeued it
        inFlight.delete(message)
        if (err) queue.unshift(message)
        else if (message.qos === 1) acked++
        settleDrain()
        pump()
      })
    }
  }

  return {
    push(message: Outgoing): void {
      if (queue.length >= maxQueued) {
        const oldest = queue.findIndex((m) => m.kind === 'telemetry')
        queue.splice(oldest === -1 ? 0 : oldest, 1)
        dropped++
      }
      queue.push(message)
      pump()
    },
    /** start (or resume) sending through this connection */
    attach(send: Sender): void {
      sender = send
      pump()
    },
    /** stop handing out new messages; those in flight may still be acknowledged */
    pause(): void {
      sender = null
    },
    /** the connection is gone: what it had in flight goes back to the front, in order */
    detach(): void {
      sender = null
      generation++
      queue = [...inFlight, ...queue]
      inFlight.clear()
      settleDrain()
    },
    /** resolves true once nothing is in flight, false after timeoutMs */
    drained(timeoutMs: number): Promise<boolean> {
      if (inFlight.size === 0) return Promise.resolve(true)
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs)
        drainWaiters.push(() => {
          clearTimeout(timer)
          resolve(true)
        })
      })
    },
    stats: (): PublishQueueStats => ({ queued: queue.length, inFlight: inFlight.size, sent, acked, dropped }),
  }
}

export type PublishQueue = ReturnType<typeof createPublishQueue>
