import cluster, { type Worker } from 'node:cluster'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { WorkersFailed } from './errors.ts'

/**
 * `gatehouse start --cluster … --workers N` (docs/architecture.md, "Scale-out"): the primary forks N
 * node:cluster workers and serves nothing itself. Each worker is a whole Gatehouse node of the Redis
 * cluster on the shared data directory; their listeners share the ports (node:cluster: the primary
 * accepts and hands each connection to a worker in turn; Node 20 has no reusePort). The primary makes
 * the TLS session ticket keys and sends them over the IPC channel only (never a file, the environment
 * or a log), restarts a worker that dies (with a back-off, giving up after too many crashes in a window)
 * and, on SIGTERM or SIGINT, stops every worker the way one process stops, then returns.
 */

/** The messages on the IPC channel between the primary and a worker. */
const TICKET_KEYS = 'gatehouse:ticket-keys'
/** a worker asks for the keys once it listens for them: a message sent before that would be lost */
const WANT_KEYS = 'gatehouse:want-ticket-keys'
const LISTENING = 'gatehouse:listening'

export interface WorkerRestartPolicy {
  /** the first restart's delay, doubled for each crash in the window up to maxDelayMs */
  firstDelayMs: number
  maxDelayMs: number
  /** this many crashes within windowMs: give up, stop every worker and exit 1 */
  maxCrashes: number
  windowMs: number
}

export const DEFAULT_RESTART_POLICY: WorkerRestartPolicy = { firstDelayMs: 200, maxDelayMs: 5000, maxCrashes: 5, windowMs: 60_000 }

/** This process is a worker forked by superviseWorkers: its number (1, 2 …), else undefined. */
export function workerId(): number | undefined {
  return cluster.isWorker ? cluster.worker?.id : undefined
}

/** In a worker: asks the primary for the ticket keys and waits for them. */
export function receiveTicketKeys(): Promise<Buffer> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      const m = message as { type?: string; keys?: string }
      if (m?.type !== TICKET_KEYS || typeof m.keys !== 'string') return
      process.off('message', onMessage)
      resolve(Buffer.from(m.keys, 'base64'))
    }
    process.on('message', onMessage)
    process.send?.({ type: WANT_KEYS })
  })
}

/** In a worker: tells the primary where it listens (what `gatehouse start` prints once all listen). */
export function reportListening(listening: unknown): void {
  process.send?.({ type: LISTENING, listening })
}

/** In a worker that has stopped: leaves the IPC channel, which would keep the process alive. */
export function leaveWorkers(): void {
  if (cluster.isWorker) process.disconnect?.()
}

/**
 * In the primary: runs `count` workers until SIGTERM/SIGINT (resolves once all have stopped) or until it
 * gives up (rejects with GH_BROKER_WORKERS_FAILED after every worker has stopped): a worker that exits
 * before it listened failed to start (its error is its own output, and would repeat), a worker that dies
 * later is restarted by the policy. `onListening` gets the first worker's report once every worker listens.
 */
export function superviseWorkers(
  count: number,
  deps: { log: Logger; now?: () => number },
  options: { policy?: WorkerRestartPolicy; onListening: (listening: unknown) => void },
): Promise<void> {
  const log = deps.log.child({ module: 'broker.workers' })
  const now = deps.now ?? Date.now
  const policy = options.policy ?? DEFAULT_RESTART_POLICY
  const ticketKeys = randomBytes(48).toString('base64')
  const listening = new Map<number, unknown>()
  const restarts = new Set<NodeJS.Timeout>()
  let crashes: number[] = []
  let reported = false
  let failure: Error | undefined
  let stopping = false

  return new Promise<void>((resolve, reject) => {
    const running = () => Object.keys(cluster.workers ?? {}).length
    const finishIfDone = () => {
      if (!stopping || running() > 0) return
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      cluster.off('exit', onExit)
      if (failure) reject(failure)
      else resolve()
    }
    const stopAll = (why: string) => {
      if (stopping) return
      stopping = true
      for (const timer of restarts) clearTimeout(timer)
      restarts.clear()
      log.info({ why, workers: running() }, 'stopping the workers')
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
      finishIfDone()
    }
    const fork = () => {
      const worker = cluster.fork()
      worker.on('message', (message: { type?: string; listening?: unknown }) => {
        if (message?.type === WANT_KEYS) worker.send({ type: TICKET_KEYS, keys: ticketKeys })
        if (message?.type !== LISTENING) return
        listening.set(worker.id, message.listening)
        log.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening')
        if (!reported && listening.size >= count) {
          reported = true
          options.onListening(listening.values().next().value)
        }
      })
    }
    const onExit = (worker: Worker, code: number | null, signal: string | null) => {
      const started = listening.delete(worker.id)
      if (stopping) return finishIfDone()
      if (!started) {
        failure = new WorkersFailed(`worker ${worker.id} exited (code ${code}, signal ${signal}) before it listened`)
        log.error({ worker: worker.id, code, signal }, 'worker failed to start: stopping')
        return stopAll('a worker failed to start')
      }
      const at = now()
      crashes = [...crashes.filter((t) => at - t < policy.windowMs), at]
      if (crashes.length >= policy.maxCrashes) {
        failure = new WorkersFailed(`${crashes.length} worker crashes within ${policy.windowMs} ms`)
        log.error(
          { worker: worker.id, code, signal, crashes: crashes.length, windowMs: policy.windowMs },
          'workers keep crashing: giving up',
        )
        return stopAll('workers keep crashing')
      }
      const delayMs = Math.min(policy.firstDelayMs * 2 ** (crashes.length - 1), policy.maxDelayMs)
      log.warn({ worker: worker.id, code, signal, restartInMs: delayMs }, 'worker died: restarting')
      const timer = setTimeout(() => {
        restarts.delete(timer)
        fork()
      }, delayMs)
      restarts.add(timer)
    }
    const onSignal = (signal: string) => stopAll(signal)
    cluster.on('exit', onExit)
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
    for (let i = 0; i < count; i++) fork()
  })
}
