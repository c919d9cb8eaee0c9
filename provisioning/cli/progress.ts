import { SingleBar } from 'cli-progress'
import type { CliIo } from './cli-deps.ts'

export interface Progress {
  update(done: number, total: number): void
  stop(): void
}

/**
 * Progress for long operator work, on stderr so stdout stays parseable: a bar on a terminal, and a
 * line at every 10% otherwise (CI logs, pipes).
 */
export function createProgress(io: CliIo, label: string): Progress {
  if (io.isTty) {
    const bar = new SingleBar({
      format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    })
    let started = false
    return {
      update(done, total) {
        if (!started) {
          bar.start(total, 0)
          started = true
        }
        bar.update(done)
      },
      stop: () => started && bar.stop(),
    }
  }
  let lastDecile = -1
  return {
    update(done, total) {
      const decile = Math.floor((done / total) * 10)
      if (decile !== lastDecile && (decile > lastDecile || done === total)) {
        lastDecile = decile
        io.err(`${label}: ${done}/${total} (${Math.round((done / total) * 100)}%)\n`)
      }
    },
    stop() {},
  }
}
